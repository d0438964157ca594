"""One SGD loop over an index set, shared by FT, GA and certified fine-tuning."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dememo.data.augment import Augment
from dememo.data.batches import DeviceLoader
from dememo.data.imageset import ImageSet
from dememo.errors import TrainingError
from dememo.progress import make_progress
from dememo.runtime import MEMORY_FORMAT, Precision, autocast, channels_last, seed_everything


def sgd_steps(
    model: nn.Module,
    data: ImageSet,
    indices: torch.Tensor,
    *,
    steps: int,
    lr: float,
    batch_size: int,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    ascent: bool = False,
    augment: Augment | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    precision: Precision = "fp32",
    after_backward: Callable[[], None] | None = None,
    after_step: Callable[[], None] | None = None,
    description: str = "unlearning",
) -> int:
    """Take ``steps`` SGD steps on mean cross-entropy over shuffled batches of
    ``data[indices]`` (epochs repeat), descending, or ascending when ``ascent``;
    ``augment`` applies to every batch (None: the images as stored).

    ``after_backward`` may edit the gradients (clipping), ``after_step`` the weights
    (noise). Returns the number of samples processed. Raises TrainingError on a
    non-finite loss.
    """
    seed_everything(seed)
    device = torch.device(device)
    model.to(device=device, memory_format=MEMORY_FORMAT).train()
    loader = DeviceLoader(data, batch_size, device, indices=indices, augment=augment, seed=seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    sign, done, samples = (-1.0 if ascent else 1.0), 0, 0
    with make_progress() as bar:
        task = bar.add_task(description, total=steps, status="")
        while done < steps:
            for batch in loader:
                with autocast(device, precision):
                    loss = F.cross_entropy(model(channels_last(batch.images)).float(), batch.labels)
                if not torch.isfinite(loss):
                    raise TrainingError(f"{description}: loss became {float(loss)} at step {done + 1}")
                optimizer.zero_grad(set_to_none=True)
                (sign * loss).backward()
                if after_backward is not None:
                    after_backward()
                optimizer.step()
                if after_step is not None:
                    after_step()
                done, samples = done + 1, samples + len(batch.index)
                bar.advance(task)
                if done == steps:
                    break
    return samples


def steps_for_epochs(size: int, batch_size: int, epochs: int) -> int:
    return epochs * -(-size // batch_size)
