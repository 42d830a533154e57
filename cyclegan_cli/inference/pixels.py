"""Raw RGBA pixels in, translated RGBA pixels out: how the GIMP plug-in uses the core, in
GIMP's own Python (imported) or through ``cgan gimp pixels`` (stdin and stdout, so no copy of
the user's pixels ever lands on disk; the plug-in keeps stdin open until it has the result, see
:func:`exit_when_stdin_closes`). Imports numpy and the core only."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path

import numpy as np

from cyclegan_cli.errors import DataError, ModelError
from cyclegan_cli.inference.resolve import resolve_model
from cyclegan_cli.inference.tiling import Progress
from cyclegan_cli.inference.translator import Translator, load_model

_LOADED: dict[tuple[str, str | None], Translator] = {}  # layers of one run share the model


def exit_when_stdin_closes() -> threading.Event:
    """End this process (exit status 130) as soon as stdin closes before the returned event
    is set: ``cgan gimp pixels`` then stops at once, tiled or not, when the plug-in that
    holds the other end is killed (GIMP's Cancel), on every platform."""
    done = threading.Event()

    def watch() -> None:
        with contextlib.suppress(OSError, ValueError):  # the descriptor: no buffer's lock
            os.read(sys.stdin.fileno(), 1)  # held at exit (the process ends normally)
        if not done.is_set():
            os._exit(130)

    threading.Thread(target=watch, daemon=True).start()
    return done


def rgba_size(width: int, height: int) -> int:
    """Bytes of a ``width`` x ``height`` RGBA u8 image; DataError for an empty one."""
    if width <= 0 or height <= 0:
        raise DataError(f"the image is empty ({width}x{height} pixels)")
    return width * height * 4


def model_for(model: str | os.PathLike[str], direction: str | None) -> Translator:
    """The translator for a model file, run directory's export or name (kept loaded)."""
    path, backend = resolve_model(model, direction)
    if backend != "onnx":
        which = f" for {direction}" if direction else ""
        raise ModelError(f"{model} has no exported ONNX model{which}; run `cgan export "
                         f"{model}` first")
    key = (str(Path(path).resolve()), direction)
    if key not in _LOADED:
        _LOADED[key] = load_model(path, direction=direction)
    return _LOADED[key]


def translate_rgba(data: bytes, width: int, height: int, model: str | os.PathLike[str],
                   direction: str | None = None, tile: int | None = None,
                   progress: Progress | None = None) -> bytes:
    """``width`` x ``height`` RGBA u8 ``data`` translated by ``model`` (alpha kept, colours
    under transparent pixels translated too). ``direction`` None takes the file's own;
    ``progress`` see :meth:`~cyclegan_cli.inference.translator.Translator.translate_rgb`."""
    if len(data) != rgba_size(width, height):
        raise DataError(f"expected {rgba_size(width, height)} bytes of RGBA pixels for "
                        f"{width}x{height}, got {len(data)}")
    arr = np.frombuffer(data, np.uint8).reshape(height, width, 4)
    out = model_for(model, direction).translate_array(arr, tile or None, progress)
    return np.ascontiguousarray(out, dtype=np.uint8).tobytes()
