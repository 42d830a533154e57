"""How model files are named: ``NAME-AtoB.onnx``, ``NAME-BtoA.onnx`` and their lower-precision
twins ``NAME-AtoB-fp16.onnx`` / ``-int8.onnx``. Export writes these names, ``--model NAME``
finds them, ``cgan models`` and the GIMP plug-in read them: all ask this module."""

from __future__ import annotations

import os
import re
from pathlib import Path

from cyclegan_cli.inference.metadata import DIRECTIONS

TWINS = ("fp16", "int8")  # suffixes of the lower-precision copies (fp32 has none)
SUFFIX = ".onnx"
_TAIL = re.compile(rf"-({'|'.join(DIRECTIONS)})(-({'|'.join(TWINS)}))?$")


def model_filename(name: str, direction: str, twin: str | None = None) -> str:
    """``name-direction[-twin].onnx``."""
    return f"{name}-{direction}{f'-{twin}' if twin else ''}{SUFFIX}"


def twin_path(path: str | os.PathLike[str], twin: str) -> Path:
    """Where the ``twin`` (fp16, int8) copy of a model file goes: ``x.onnx`` -> ``x-int8.onnx``."""
    if twin not in TWINS:
        raise ValueError(f"unknown twin {twin!r}; use {' or '.join(TWINS)}")
    path = Path(path)
    return path.with_name(f"{path.stem}-{twin}{path.suffix or SUFFIX}")


def model_name(path: str | os.PathLike[str]) -> str:
    """What ``--model`` accepts for a file: its stem without direction and twin suffixes."""
    return _TAIL.sub("", Path(path).stem)


def opposite_file(path: str | os.PathLike[str], direction: str) -> Path | None:
    """``name-BtoA[...].onnx`` beside ``name-AtoB[...].onnx`` (and the other way round), or
    None when the file name does not say its direction."""
    path = Path(path)
    if f"-{direction}" not in path.name:
        return None
    other = DIRECTIONS[1 - DIRECTIONS.index(direction)]
    return path.with_name(path.name.replace(f"-{direction}", f"-{other}", 1))


def name_suffixes() -> list[str]:
    """The suffixes :func:`model_name` strips, longest-first (for the GIMP plug-in, which
    cannot import this module: ``cgan gimp install`` writes them into its settings)."""
    return [f"-{d}-{t}" for d in DIRECTIONS for t in TWINS] + [f"-{d}" for d in DIRECTIONS]
