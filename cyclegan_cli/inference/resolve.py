"""Finding the model file for ``--model``: an ONNX file, a run directory, or a name in the
model folders (./weights, the shipped models, the user models folder)."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from cyclegan_cli.config import TrainConfig
from cyclegan_cli.errors import CganError, ModelError
from cyclegan_cli.inference.catalog import read_info
from cyclegan_cli.inference.metadata import DIRECTIONS, only_direction
from cyclegan_cli.inference.naming import SUFFIX, model_filename, model_name, opposite_file
from cyclegan_cli.rundir import RunDir
from cyclegan_cli.shipped import weights_dir
from cyclegan_cli.userdirs import MODELS_ENV, user_models_dir

WEIGHTS_DIR = Path("weights")
SHIPPED_DIR = weights_dir()  # the models that ship with the package
# (the user models folder, user_models_dir, is cyclegan_cli.userdirs')

# where models went before the folder followed the platform (still searched where it exists)
LEGACY_DIR = Path("~/.local/share/cyclegan-cli/models").expanduser()


def model_dirs() -> list[Path]:
    """Folders searched for model names, in order: ``./weights``, the shipped models (see
    :mod:`cyclegan_cli.shipped`), and the user models folder
    (:func:`~cyclegan_cli.userdirs.user_models_dir`).
    Duplicates and missing folders are left out."""
    found: list[Path] = []
    legacy = () if os.environ.get(MODELS_ENV) else (LEGACY_DIR,)
    for folder in (WEIGHTS_DIR, SHIPPED_DIR, user_models_dir(), *legacy):
        if folder.is_dir() and all(folder.resolve() != f.resolve() for f in found):
            found.append(folder)
    return found


def resolve_model(model: str | os.PathLike[str], direction: str | None,
                  weights_dir: str | os.PathLike[str] | None = None,
                  checkpoint: str | None = None, backend: str | None = None
                  ) -> tuple[Path, str]:
    """(path, backend) for ``model`` and ``direction`` (None: AtoB where the model has it,
    else its other direction, for one-direction models such as pix2pix's).

    - an ``.onnx`` file: used as it is (its metadata is checked against the direction later);
    - a run directory (config.json inside): its exported ``<run>-<direction>.onnx`` in the run
      folder or in the model folders, else the run's checkpoint through the torch backend; a
      ``checkpoint`` other than ``auto`` (best, latest, a file) always takes the checkpoint;
    - a name: ``<name>-<direction>.onnx`` or ``<name>.onnx`` in ``weights_dir``, or by default
      in each of :func:`model_dirs` (``cgan models`` lists them); a bare file name
      (``name-AtoB.onnx``, no folder) is looked for there too.

    ``backend="torch"`` takes a run directory's checkpoint even where it has an export.
    """
    path = Path(model)
    folders = [Path(weights_dir)] if weights_dir is not None else model_dirs()
    if direction is not None and direction not in DIRECTIONS:
        raise ModelError(f"unknown direction {direction!r}; use AtoB or BtoA")
    if path.is_file():
        return path, "onnx"
    run_checkpoint = checkpoint not in (None, "auto") or backend == "torch"
    if direction is None:
        direction = _own_direction(path, model, folders, run_checkpoint)
    try:
        return _resolve(path, model, direction, folders, run_checkpoint)
    except CganError:
        other = DIRECTIONS[1 - DIRECTIONS.index(direction)]
        found, _ = _resolve(path, model, other, folders, run_checkpoint)  # (or not found)
        wanted = model_filename(model_name(str(model)), direction)
        if _one_way(found):
            raise CganError(only_direction(f"model {model}", other, f"{found.name}; a "
                                           "one-direction model")) from None
        raise CganError(f"model {model} has no {direction} file ({wanted}; found "
                        f"{found}): export that direction (cgan export RUN --direction "
                        f"{direction}) or pull it") from None


def _own_direction(path: Path, model: str | os.PathLike[str], folders: list[Path],
                   run_checkpoint: bool) -> str:
    """The direction a model is used in when none is asked for: a one-direction run's own
    (its config says) or file's own (its metadata says), else AtoB."""
    run = RunDir(path)
    if path.is_dir() and run.is_run():
        cfg = TrainConfig.load(run.config)
        return cfg.direction if cfg.paired else "AtoB"
    try:
        _resolve(path, model, "AtoB", folders, run_checkpoint)
    except CganError:
        try:
            found, _ = _resolve(path, model, "BtoA", folders, run_checkpoint)
        except CganError:
            return "AtoB"  # (not found either way: said for AtoB)
        return "BtoA" if _one_way(found) else "AtoB"
    return "AtoB"


def _one_way(path: Path) -> bool:
    """Whether a model file's metadata says it has one direction only (pix2pix)."""
    try:
        return read_info(path).one_way
    except ValueError:  # no cyclegan-cli metadata, or not a model: nothing says so
        return False


def _resolve(path: Path, model: str | os.PathLike[str], direction: str, folders: list[Path],
             run_checkpoint: bool) -> tuple[Path, str]:
    """:func:`resolve_model` for one direction (``run_checkpoint``: a run directory's
    checkpoint even where it has an export)."""
    if path.is_dir():
        run = RunDir(path)
        if not run.is_run():
            raise CganError(f"{path} is a folder but not a run directory (no "
                            f"{run.config.name})")
        if run_checkpoint:
            return path, "torch"
        exported = model_filename(path.name, direction)
        for candidate in [path / exported, *(f / exported for f in folders)]:
            if candidate.is_file():
                return candidate, "onnx"
        return path, "torch"
    bare = path.name if path.parent == Path(".") else None  # a file name, not a path
    for folder in folders:
        for candidate in (folder / model_filename(str(model), direction),
                          folder / f"{model}{SUFFIX}", *([folder / bare] if bare else [])):
            if candidate.is_file():  # a name, or a file name (golden_hour-AtoB.onnx) there
                return candidate, "onnx"
    raise CganError(not_found(str(model), folders))


def how_to_get_models() -> str:
    """How to get a model, for the messages that find none (the CLI's and, through
    ``cgan gimp install``'s settings, the GIMP plug-in's)."""
    from cyclegan_cli.inference.published import EXAMPLE

    return (f"get one with `cgan models pull {EXAMPLE}` or `cgan export RUN` (both write to "
            f"{user_models_dir()})")


def not_found(model: str, folders: list[Path]) -> str:
    """The one line for a model that is nowhere: the names it may have meant, or, with no
    models at all, how to get one."""
    names = sorted({model_name(p) for f in folders for p in f.glob(f"*{SUFFIX}")})
    if not names:
        return (f"model not found: {model}, and no models are installed yet: "
                f"{how_to_get_models()}, or give the path of an .onnx file")
    close = difflib.get_close_matches(model_name(model), names, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    return (f"model not found: {model}; {hint}known models: {', '.join(names[:12])}"
            f"{' …' if len(names) > 12 else ''} (cgan models lists them)")


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
