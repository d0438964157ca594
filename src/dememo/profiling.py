"""Measuring what autograd holds: peak bytes of tensors saved for backward."""

from __future__ import annotations

import torch


class SavedBytes:
    """Peak bytes of tensors saved for backward while active (saved-tensor hooks):
    ``with SavedBytes() as saved: loss.backward()`` then read ``saved.peak``."""

    def __init__(self) -> None:
        self.live = self.peak = 0

    def __enter__(self) -> SavedBytes:
        self.hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda held: held.tensor)
        self.hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.hooks.__exit__(*exc)

    def _pack(self, tensor: torch.Tensor) -> object:
        owner, size = self, tensor.numel() * tensor.element_size()

        class Held:
            def __init__(self) -> None:
                self.tensor = tensor
                owner.live += size
                owner.peak = max(owner.peak, owner.live)

            def __del__(self) -> None:
                owner.live -= size

        return Held()
