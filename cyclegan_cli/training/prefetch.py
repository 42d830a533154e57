"""Batches moved to the device one step ahead, so the copy overlaps the previous step."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import Tensor

Batch = tuple[Tensor, Tensor, list[str]]  # A and B in [-1, 1] on the device, bad files


def to_model_range(batch: Tensor, device: torch.device) -> Tensor:
    """uint8 NxCxHxW (possibly pinned) -> float in [-1, 1] on ``device``; scaled there."""
    return batch.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)


def device_batches(batches: Iterable[dict], device: torch.device) -> Iterator[Batch]:
    """The loader's uint8 batches as float batches on ``device``.

    On CUDA the next batch is copied and scaled on a side stream while the current one is
    being trained on (the loader pins its memory, so the copy is asynchronous); elsewhere the
    batches are converted as they come.
    """
    if device.type != "cuda":
        for batch in batches:
            yield (to_model_range(batch["A"], device), to_model_range(batch["B"], device),
                   batch["bad"])
        return
    stream = torch.cuda.Stream(device)

    def issue(batch: dict) -> Batch:
        with torch.cuda.stream(stream):
            return (to_model_range(batch["A"], device), to_model_range(batch["B"], device),
                    batch["bad"])

    it = iter(batches)
    ahead = next(it, None)
    pending = issue(ahead) if ahead is not None else None
    while pending is not None:
        current = torch.cuda.current_stream(device)
        current.wait_stream(stream)
        for t in pending[:2]:
            t.record_stream(current)  # memory made on the side stream, used on this one
        ready = pending
        ahead = next(it, None)
        pending = issue(ahead) if ahead is not None else None
        yield ready
