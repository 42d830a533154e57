"""The history pool of generated images (Shrivastava et al.), as in the reference CycleGAN."""

from __future__ import annotations

import random
from typing import Any

import torch
from torch import Tensor


class ImagePool:
    """Keeps up to ``size`` earlier fakes; each query returns a batch mixing new and old ones.

    While the pool is filling, every new image is stored and returned unchanged. Once full,
    each new image is returned with probability 1/2; otherwise a random stored image is returned
    and replaced by the new one. ``size == 0`` disables the pool. The pool owns its random
    generator so its behaviour is reproducible and can be checkpointed.
    """

    def __init__(self, size: int, seed: int | None = None) -> None:
        if size < 0:
            raise ValueError("pool size must be >= 0")
        self.size = size
        self.images: list[Tensor] = []
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: Tensor) -> Tensor:
        """Return a batch the size of ``images`` drawn from the new images and the history."""
        if self.size == 0:
            return images.detach()
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif self.rng.random() > 0.5:
                slot = self.rng.randrange(self.size)
                out.append(self.images[slot].clone())
                self.images[slot] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, "images": [t.cpu() for t in self.images],
                "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.size = int(state["size"])
        self.images = [t.to(device) for t in state["images"]]
        rng_state = state["rng"]
        self.rng.setstate((rng_state[0], tuple(rng_state[1]), rng_state[2]))
