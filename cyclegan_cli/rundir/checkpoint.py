"""Checkpoint files: atomic writes and loading with one-line errors. torch is imported when a
checkpoint is read or written, not before (the rest of this package needs no torch)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cyclegan_cli.atomic import atomic_write
from cyclegan_cli.errors import CheckpointError

FORMAT = "cyclegan-cli/checkpoint/1"


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` with torch.save to a temp file, fsync, then rename over ``path``."""
    import torch

    state = {"format": FORMAT, **state}
    atomic_write(path, lambda fh: torch.save(state, fh))


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`; one-line error if unusable."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(exc).__name__})") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a cyclegan-cli training checkpoint")
    return state
