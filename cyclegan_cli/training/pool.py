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

    The random choices are made on the host (no device synchronisation); the images live in
    one preallocated device tensor and each query moves them with a few batched index
    operations, whatever the batch size. Images of changing sizes (whole-image training) are
    kept in a list instead.
    """

    def __init__(self, size: int, seed: int | None = None) -> None:
        if size < 0:
            raise ValueError("pool size must be >= 0")
        self.size = size
        self.count = 0
        self.buffer: Tensor | None = None  # size x C x H x W once the first image arrives
        self.listed: list[Tensor] | None = None  # used instead when image sizes differ
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return self.count

    @property
    def images(self) -> list[Tensor]:
        """The stored images, each 1xCxHxW."""
        if self.listed is not None:
            return list(self.listed)
        return [] if self.buffer is None else [self.buffer[i:i + 1] for i in range(self.count)]

    def _plan(self, n: int) -> tuple[list[tuple[str, int]], dict[int, int]]:
        """For each new image: where its output comes from (("new", j) or ("old", slot)), and
        which new image each written slot finally holds. Draws exactly the random numbers of
        the one-image-at-a-time reference algorithm."""
        sources: list[tuple[str, int]] = []
        writes: dict[int, int] = {}
        for i in range(n):
            if self.count < self.size:
                writes[self.count] = i
                self.count += 1
                sources.append(("new", i))
            elif self.rng.random() > 0.5:
                slot = self.rng.randrange(self.size)
                sources.append(("new", writes[slot]) if slot in writes else ("old", slot))
                writes[slot] = i
            else:
                sources.append(("new", i))
        return sources, writes

    @torch.no_grad()
    def query(self, images: Tensor) -> Tensor:
        """Return a batch the size of ``images`` drawn from the new images and the history."""
        images = images.detach()
        if self.size == 0:
            return images
        if self.listed is None and self.buffer is not None \
                and self.buffer.shape[1:] != images.shape[1:]:
            self.listed = self.images  # sizes changed: keep a list from now on
            self.buffer = None
        if self.listed is None and self.buffer is None:
            self.buffer = images.new_empty((self.size, *images.shape[1:]))
        sources, writes = self._plan(images.shape[0])
        if self.listed is not None:
            return self._query_list(images, sources, writes)
        buffer = self.buffer
        assert buffer is not None
        device = images.device
        out = images.clone()
        old = [(i, s) for i, (kind, s) in enumerate(sources) if kind == "old"]
        moved = [(i, j) for i, (kind, j) in enumerate(sources) if kind == "new" and j != i]
        if old:
            pos, slots = (torch.tensor(v, device=device) for v in zip(*old, strict=True))
            out.index_copy_(0, pos, buffer.index_select(0, slots).to(out.dtype))
        if moved:
            pos, src = (torch.tensor(v, device=device) for v in zip(*moved, strict=True))
            out.index_copy_(0, pos, images.index_select(0, src))
        if writes:
            slots, src = (torch.tensor(v, device=device) for v in zip(*writes.items(),
                                                                     strict=True))
            buffer.index_copy_(0, slots, images.index_select(0, src).to(buffer.dtype))
        return out

    def _query_list(self, images: Tensor, sources: list[tuple[str, int]],
                    writes: dict[int, int]) -> Tensor:
        stored = self.listed
        assert stored is not None
        out = [images[j:j + 1] if kind == "new" else stored[j] for kind, j in sources]
        for slot, i in writes.items():
            image = images[i:i + 1].clone()
            if slot < len(stored):
                stored[slot] = image
            else:
                stored.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, "images": [t.cpu().clone() for t in self.images],
                "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.size = int(state["size"])
        images = [t.to(device) for t in state["images"]]
        self.count = len(images)
        self.buffer, self.listed = None, None
        if images and len({t.shape for t in images}) == 1 and self.size:
            self.buffer = images[0].new_empty((self.size, *images[0].shape[1:]))
            self.buffer[:self.count] = torch.cat(images, 0)
        elif images:
            self.listed = images
        rng_state = state["rng"]
        self.rng.setstate((rng_state[0], tuple(rng_state[1]), rng_state[2]))
