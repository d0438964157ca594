"""Training throughput: the device-resident pipeline vs. DataLoader + per-sample transforms.

Both sides produce the same augmentation (random crop with 4 px zero padding,
horizontal flip) on CIFAR-10-sized images in batches of 512, in the same run.
Reports images/s for (1) the input pipeline alone and (2) full training steps
of a model, and the ratio. Usage:

    .venv/bin/python benchmarks/train_throughput.py [--data-root ../shared/data] [--models tinycnn fastnet]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from dememo.data import load_dataset
from dememo.data.augment import Augment
from dememo.data.batches import DeviceLoader
from dememo.models import build_model

BATCH = 512
AUGMENT = Augment(crop_padding=4, flip=True)


class PerSampleDataset(Dataset):
    """The straightforward baseline: PIL images, torchvision transforms per sample."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images = images.permute(0, 2, 3, 1).numpy()
        self.labels = labels.tolist()
        self.transform = transforms.Compose(
            [
                transforms.RandomCrop(32, padding=4),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
            ]
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def batches_device(data, seed=0):
    for batch in DeviceLoader(data, BATCH, augment=AUGMENT, seed=seed):
        yield batch.images, batch.labels


def batches_baseline(data, workers):
    loader = DataLoader(PerSampleDataset(data.images, data.labels), batch_size=BATCH, shuffle=True,
                        num_workers=workers, persistent_workers=False)  # fmt: skip
    yield from loader


def timed(batches, step=None, limit=None) -> float:
    """Images per second over one pass (or ``limit`` batches)."""
    seen, started = 0, time.perf_counter()
    for i, (images, labels) in enumerate(batches):
        if step is not None:
            step(images, labels)
        seen += len(labels)
        if limit is not None and i + 1 >= limit:
            break
    return seen / (time.perf_counter() - started)


def training_step(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(images, labels):
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--images", type=int, default=10240, help="training images used")
    parser.add_argument("--models", nargs="*", default=["tinycnn", "fastnet"])
    parser.add_argument("--step-batches", type=int, default=8, help="batches timed per training run")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers for the baseline")
    args = parser.parse_args()

    data = load_dataset("cifar10", args.data_root).train
    data = data.subset(torch.arange(min(args.images, len(data))))
    results = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
               "batch": BATCH, "images": len(data), "baseline_workers": args.workers}  # fmt: skip
    timed(batches_device(data), limit=2)  # warm up
    device = timed(batches_device(data))
    baseline = timed(batches_baseline(data, args.workers))
    results["pipeline"] = {
        "device_resident": device,
        "dataloader": baseline,
        "ratio": device / baseline,
    }
    for name in args.models:
        row = {}
        for label, source in (("device_resident", lambda: batches_device(data)),
                              ("dataloader", lambda: batches_baseline(data, args.workers))):  # fmt: skip
            torch.manual_seed(0)
            model = build_model(name, 3, 10, (32, 32)).train()
            step = training_step(model)
            timed(source(), step, limit=1)  # warm up
            row[label] = timed(source(), step, limit=args.step_batches)
        row["ratio"] = row["device_resident"] / row["dataloader"]
        results[f"train_{name}"] = row
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
