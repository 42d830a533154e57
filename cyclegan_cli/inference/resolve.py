"""Finding the model file for ``--model``: an ONNX file, a run directory, or a name in weights/."""

from __future__ import annotations

import os
from pathlib import Path

from cyclegan_cli.errors import CganError

WEIGHTS_DIR = Path("weights")


def resolve_model(model: str | os.PathLike[str], direction: str,
                  weights_dir: str | os.PathLike[str] = WEIGHTS_DIR) -> tuple[Path, str]:
    """(path, backend) for ``model`` and ``direction``.

    - an ``.onnx`` file: used as it is (its metadata is checked against the direction later);
    - a run directory (config.json inside): its exported ``<run>-<direction>.onnx`` in the run
      folder or in weights/, else the run's checkpoint through the torch backend;
    - a name: ``weights/<name>-<direction>.onnx`` or ``weights/<name>.onnx``.
    """
    path = Path(model)
    weights = Path(weights_dir)
    if path.is_file():
        return path, "onnx"
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise CganError(f"{path} is a folder but not a run directory (no config.json)")
        for candidate in (path / f"{path.name}-{direction}.onnx",
                          weights / f"{path.name}-{direction}.onnx"):
            if candidate.is_file():
                return candidate, "onnx"
        return path, "torch"
    for candidate in (weights / f"{model}-{direction}.onnx", weights / f"{model}.onnx",
                      weights / str(model)):
        if candidate.is_file():
            return candidate, "onnx"
    known = sorted(p.name for p in weights.glob("*.onnx")) if weights.is_dir() else []
    hint = f"; models in {weights}/: {', '.join(known)}" if known else ""
    raise CganError(f"model not found: {model} (not a file, run directory or name in "
                    f"{weights}/){hint}")


def opposite_model(model: str | os.PathLike[str], direction: str,
                   weights_dir: str | os.PathLike[str] = WEIGHTS_DIR) -> tuple[Path, str] | None:
    """(path, backend) of the generator for the other direction of the same model, or None.

    For a file ``name-AtoB[...].onnx`` that is ``name-BtoA[...].onnx`` beside it; for a run
    directory or a name, :func:`resolve_model` with the other direction.
    """
    other = "BtoA" if direction == "AtoB" else "AtoB"
    path = Path(model)
    if path.is_file():
        if f"-{direction}" not in path.name:
            return None
        sibling = path.with_name(path.name.replace(f"-{direction}", f"-{other}", 1))
        return (sibling, "onnx") if sibling.is_file() else None
    try:
        found = resolve_model(model, other, weights_dir)
    except CganError:
        return None
    return found if found[0] != resolve_model(model, direction, weights_dir)[0] or \
        found[1] == "torch" else None
