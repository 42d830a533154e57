"""Finding the model file for ``--model``: an ONNX file, a run directory, or a name in the
model folders (./weights, the shipped models, the user models folder)."""

from __future__ import annotations

import os
from pathlib import Path

from cyclegan_cli.errors import CganError
from cyclegan_cli.inference.naming import SUFFIX, model_filename, opposite_file
from cyclegan_cli.rundir import RunDir
from cyclegan_cli.shipped import weights_dir
from cyclegan_cli.userdirs import user_data_dir

WEIGHTS_DIR = Path("weights")
SHIPPED_DIR = weights_dir()  # the models that ship with the package
# the platform's user data folder (cyclegan_cli.userdirs): ~/.local/share (or $XDG_DATA_HOME)
# on Linux, ~/Library/Application Support on macOS, %LOCALAPPDATA% on Windows
USER_DIR = user_data_dir() / "models"


# where models went before the folder followed the platform (still searched where it exists)
LEGACY_DIR = Path("~/.local/share/cyclegan-cli/models").expanduser()


def user_models_dir() -> Path:
    """Where pulled models go and user models are found: ``$CGAN_MODELS``, else
    :data:`USER_DIR`."""
    return Path(os.environ["CGAN_MODELS"]).expanduser() if os.environ.get("CGAN_MODELS") \
        else USER_DIR


def model_dirs() -> list[Path]:
    """Folders searched for model names, in order: ``./weights``, the shipped models (see
    :mod:`cyclegan_cli.shipped`), and the user models folder (:func:`user_models_dir`).
    Duplicates and missing folders are left out."""
    found: list[Path] = []
    legacy = () if os.environ.get("CGAN_MODELS") else (LEGACY_DIR,)
    for folder in (WEIGHTS_DIR, SHIPPED_DIR, user_models_dir(), *legacy):
        if folder.is_dir() and all(folder.resolve() != f.resolve() for f in found):
            found.append(folder)
    return found


def resolve_model(model: str | os.PathLike[str], direction: str,
                  weights_dir: str | os.PathLike[str] | None = None,
                  checkpoint: str | None = None) -> tuple[Path, str]:
    """(path, backend) for ``model`` and ``direction``.

    - an ``.onnx`` file: used as it is (its metadata is checked against the direction later);
    - a run directory (config.json inside): its exported ``<run>-<direction>.onnx`` in the run
      folder or in weights/, else the run's checkpoint through the torch backend; a
      ``checkpoint`` other than ``auto`` (best, latest, a file) always takes the checkpoint;
    - a name: ``<name>-<direction>.onnx`` or ``<name>.onnx`` in ``weights_dir``, or by default
      in each of :func:`model_dirs` (``cgan models`` lists them).
    """
    path = Path(model)
    folders = [Path(weights_dir)] if weights_dir is not None else model_dirs()
    if path.is_file():
        return path, "onnx"
    if path.is_dir():
        run = RunDir(path)
        if not run.is_run():
            raise CganError(f"{path} is a folder but not a run directory (no "
                            f"{run.config.name})")
        if checkpoint not in (None, "auto"):
            return path, "torch"
        exported = model_filename(path.name, direction)
        for candidate in [path / exported, *(f / exported for f in folders)]:
            if candidate.is_file():
                return candidate, "onnx"
        return path, "torch"
    for folder in folders:
        for candidate in (folder / model_filename(str(model), direction),
                          folder / f"{model}{SUFFIX}", folder / str(model)):
            if candidate.is_file():
                return candidate, "onnx"
    known = sorted({p.name for f in folders for p in f.glob("*.onnx")})
    where = ", ".join(f"{f}/" for f in folders) or "weights/ (none found)"
    hint = f"; known models: {', '.join(known)} (see cgan models)" if known else ""
    raise CganError(f"model not found: {model} (not a file, run directory or name in "
                    f"{where}){hint}")


def opposite_model(model: str | os.PathLike[str], direction: str,
                   weights_dir: str | os.PathLike[str] | None = None,
                   checkpoint: str | None = None) -> tuple[Path, str] | None:
    """(path, backend) of the generator for the other direction of the same model, or None.

    For a file ``name-AtoB[...].onnx`` that is ``name-BtoA[...].onnx`` beside it; for a run
    directory or a name, :func:`resolve_model` with the other direction.
    """
    other = "BtoA" if direction == "AtoB" else "AtoB"
    path = Path(model)
    if path.is_file():
        sibling = opposite_file(path, direction)
        return (sibling, "onnx") if sibling is not None and sibling.is_file() else None
    try:
        found = resolve_model(model, other, weights_dir, checkpoint)
    except CganError:
        return None
    return found if found[0] != resolve_model(model, direction, weights_dir, checkpoint)[0] or \
        found[1] == "torch" else None
