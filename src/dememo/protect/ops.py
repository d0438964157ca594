"""OPS: the one-pixel shortcut (Wu et al., "One-Pixel Shortcut: on the Learning Preference of Deep
Neural Networks", ICLR 2023; official code ``cychomatica/One-Pixel-Shotcut``, ``perturb.py``).

Gradient-free and class-wise. For every class, in class order, and for every pixel position ``p``
and every extreme colour ``c`` in {0, 1}^C (the corners of the colour cube; 8 for RGB, index ``v``
gives channel ``k`` the bit ``(v >> (C - 1 - k)) & 1`` as in the reference), the search scores

    score(p, c) = mean(|c - x[:, :, p]|) / std(|c - x[:, :, p]|)

over all (image, channel) values of the class's covered images at ``p`` (population std, as numpy's
default in the reference). A high score means the colour is far from the class's usual colour there
and that usual colour is consistent. The ``pixels`` best pairs of the class are painted onto all its
images (an L0 change of exactly ``pixels`` pixels, no l_inf budget: ``budget`` is unused).

Details:

- Only the exact (position, colour) pair is reserved for later classes, as in the reference; another
  class may reuse the position with another colour or the colour elsewhere.
- ``pixels`` defaults to 2, the value used by the SoK evaluation; the official default (``sparsity``)
  is 1. With more than one pixel, the pairs of one class are taken at distinct positions (the
  reference's global argsort could pick one position twice, painting fewer pixels than asked).
- The statistics are computed exactly on the uint8 grid (integer sums of the absolute differences
  and of their squares; the ratio is scale-free), so a constant pixel gives std exactly 0. It is
  guarded with a tiny epsilon instead of dividing by zero (the reference yields NaN there); such a
  pair then outranks every pair with a non-zero spread, which is the point of the score.
- Positions are (row, col) = divmod(p, W), correct for non-square images too.
- Ties are broken towards the lower position, then the lower colour index (stable sort).
"""

from __future__ import annotations

import torch
from pydantic import Field

from dememo.data.imageset import ImageSet
from dememo.errors import ConfigError
from dememo.protect.base import ProtectConfig, Protector, register_protector
from dememo.protect.perturbation import Perturbation

STD_EPSILON = 1e-12  # in [0, 1] pixel units; any non-zero std of uint8 data is far larger
MAX_CHANNELS = 12  # 2**C extreme colours are searched
_CHUNK = 2048  # samples per block when accumulating the per-class sums


class OPSConfig(ProtectConfig):
    pixels: int = Field(2, ge=1)  # pixels painted per class (SoK setting; official default 1)


def extreme_colours(channels: int) -> torch.Tensor:
    """The 2**C corners of the colour cube as a (2**C, C) bool tensor, reference bit order."""
    index = torch.arange(2**channels)
    shifts = torch.arange(channels - 1, -1, -1)
    return ((index[:, None] >> shifts[None, :]) & 1).bool()


def pair_scores(images: torch.Tensor) -> torch.Tensor:
    """OPS scores of one class: ``images`` (N, C, H, W) uint8 -> (2**C, H*W) float64.

    Entry [v, p] is mean/std of |colour_v - x| over the N*C values at position p, in [0, 1] units.
    """
    n, channels = images.shape[:2]
    flat = images.reshape(n, channels, -1)
    s = torch.zeros(flat.shape[1:], dtype=torch.int64)  # sum of u, u in 0..255
    q = torch.zeros(flat.shape[1:], dtype=torch.int64)  # sum of u**2
    for start in range(0, n, _CHUNK):
        block = flat[start : start + _CHUNK].to(torch.int64)
        s += block.sum(0)
        q += (block * block).sum(0)
    colours = extreme_colours(channels)[:, :, None]  # (V, C, 1)
    # |255 c - u| is u for c = 0 and 255 - u for c = 1; sums of it and of its square per channel:
    d1 = torch.where(colours, 255 * n - s, s).sum(1)  # (V, P)
    d2 = torch.where(colours, 255 * 255 * n - 2 * 255 * s + q, q).sum(1)
    m = n * channels
    if m * m * 255**2 >= 2**62:  # exact int64 would overflow: fall back to float64
        d1, d2 = d1.double(), d2.double()
    spread = (m * d2 - d1 * d1).double().clamp_min(0)  # = (255 m)^2 * population variance
    mean = d1.double() / (255 * m)
    std = spread.sqrt() / (255 * m)
    return mean / std.clamp_min(STD_EPSILON)


def choose_pairs(scores: torch.Tensor, pixels: int, reserved: set[tuple[int, int]]) -> list[tuple[int, int]]:
    """The ``pixels`` best (position, colour) pairs at distinct positions, skipping ``reserved``."""
    colours, positions = scores.shape
    flat = scores.t().reshape(-1).clone()  # pair index = position * V + colour
    for p, v in reserved:
        flat[p * colours + v] = -torch.inf
    order = torch.sort(flat, descending=True, stable=True).indices
    chosen: list[tuple[int, int]] = []
    used: set[int] = set()
    for pair in order.tolist():
        if flat[pair] == -torch.inf:
            break
        p, v = divmod(pair, colours)
        if p not in used:
            chosen.append((p, v))
            used.add(p)
            if len(chosen) == pixels:
                break
    return chosen


@register_protector
class OnePixelShortcut(Protector):
    name = "ops"
    description = "one-pixel shortcut: class-wise extreme-colour pixels, searched per class (Wu et al. 2023)"
    Config = OPSConfig

    def generate(self, data: ImageSet, indices: torch.Tensor) -> Perturbation:
        cfg = self.config
        channels, height, width = data.images.shape[1:]
        if channels > MAX_CHANNELS:
            raise ConfigError(f"ops: searches 2**C extreme colours; {channels} channels is too many")
        if cfg.pixels > height * width:
            raise ConfigError(f"ops: pixels={cfg.pixels} exceeds the {height * width} pixels of an image")
        indices = indices.cpu()
        labels = data.labels[indices]
        palette = extreme_colours(channels).float()
        values = torch.zeros(data.num_classes, channels, height, width)
        mask = torch.zeros(data.num_classes, 1, height, width, dtype=torch.bool)
        reserved: set[tuple[int, int]] = set()
        record = []
        for cls in range(data.num_classes):
            members = indices[labels == cls]
            if len(members) == 0:
                continue
            chosen = choose_pairs(pair_scores(data.images[members]), cfg.pixels, reserved)
            if len(chosen) < cfg.pixels:
                raise ConfigError(
                    f"ops: class {cls} has only {len(chosen)} free (position, colour) pairs at distinct "
                    f"positions, {cfg.pixels} asked"
                )
            for p, v in chosen:
                row, col = divmod(p, width)
                values[cls, :, row, col] = palette[v]
                mask[cls, 0, row, col] = True
                reserved.add((p, v))
                record.append({"class": cls, "row": row, "col": col, "colour": palette[v].int().tolist()})
        return Perturbation(
            self.name, "replace", indices, labels.clone(), values, len(data), None, mask,
            config={**cfg.model_dump(), "pairs": record},
        )  # fmt: skip
