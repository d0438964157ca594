"""UE-s generation speed: dememo's implementation vs. a straightforward fp32 one.

Both run the same sample-wise min-min algorithm (Huang et al. 2021: 10 surrogate
SGD steps on batches of 512, then 20 sign-gradient steps of 0.8/255 on every
sample, eps 8/255) for the same number of rounds on the same real CIFAR-10
images with the same surrogate architecture. The baseline is written the way the
reference code works: a DataLoader with per-sample ToTensor, one batch at a time,
NCHW fp32, the input gradient from loss.backward(), and a separate pass for the
stop criterion. Reports image x PGD-step throughput and the ratio. Usage:

    .venv/bin/python benchmarks/ue_generation.py [--images 2000] [--rounds 2] [--surrogates tinycnn fastnet]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from dememo.data import load_dataset
from dememo.models import build_model
from dememo.protect import protect

EPS, STEP, PGD_STEPS, TRAIN_STEPS, BATCH = 8 / 255, 0.8 / 255, 20, 10, 512


class IndexedImages(Dataset):
    def __init__(self, data) -> None:
        self.images = data.images.permute(0, 2, 3, 1).numpy()
        self.labels = data.labels.tolist()
        self.to_tensor = transforms.ToTensor()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        image = Image.fromarray(self.images[i].squeeze(-1) if self.images.shape[-1] == 1 else self.images[i])
        return self.to_tensor(image), self.labels[i], i


def baseline_ue_s(data, surrogate: str, rounds: int, seed: int = 0) -> None:
    """The straightforward implementation of the same rounds."""
    torch.manual_seed(seed)
    model = build_model(surrogate, data.channels, data.num_classes, data.image_size, *data.channel_stats())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    noise = torch.zeros(len(data), *data.images.shape[1:])
    dataset = IndexedImages(data)
    ordered = DataLoader(dataset, batch_size=BATCH, shuffle=False)
    shuffled = DataLoader(dataset, batch_size=BATCH, shuffle=True, drop_last=True)
    train_batches = iter(shuffled)
    for _ in range(rounds):
        model.train()
        for _ in range(TRAIN_STEPS):
            try:
                images, labels, index = next(train_batches)
            except StopIteration:
                train_batches = iter(shuffled)
                images, labels, index = next(train_batches)
            loss = F.cross_entropy(model((images + noise[index]).clamp(0, 1)), labels)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        for images, labels, index in ordered:
            perturbed = (images + noise[index]).clamp(0, 1)
            for _ in range(PGD_STEPS):
                perturbed = perturbed.detach().requires_grad_(True)
                F.cross_entropy(model(perturbed), labels).backward()
                perturbed = perturbed - STEP * perturbed.grad.sign()
                eta = (perturbed - images).clamp(-EPS, EPS)
                perturbed = (images + eta).clamp(0, 1)
            noise[index] = eta.detach()
        for p in model.parameters():
            p.requires_grad_(True)
        correct = 0
        with torch.no_grad():
            for images, labels, index in ordered:
                correct += int((model((images + noise[index]).clamp(0, 1)).argmax(1) == labels).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--images", type=int, default=2000, help="CIFAR-10 training images (balanced)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--surrogates", nargs="*", default=["tinycnn", "fastnet"])
    args = parser.parse_args()
    data = load_dataset("cifar10", args.data_root).train.head(args.images // 10)
    work = len(data) * PGD_STEPS * args.rounds
    results = {"machine": platform.machine(), "threads": torch.get_num_threads(), "images": len(data),
               "rounds": args.rounds}  # fmt: skip
    for surrogate in args.surrogates:
        started = time.perf_counter()
        baseline_ue_s(data, surrogate, args.rounds)
        baseline = work / (time.perf_counter() - started)
        started = time.perf_counter()
        protect(
            "ue-s", data, surrogate=surrogate, max_rounds=args.rounds, stop_accuracy=2.0, precision="fp32"
        )
        ours = work / (time.perf_counter() - started)
        results[surrogate] = {"dememo_img_steps_per_s": ours, "baseline_img_steps_per_s": baseline,
                              "ratio": ours / baseline}  # fmt: skip
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
