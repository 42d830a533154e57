"""Folders of numbered frames (``frame_0001.png`` ...): translated in natural order, into a
folder of frames or assembled into a video. Order matters for ``--stabilize``. Torch-free."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from cyclegan_cli.data.images import IMAGE_EXTENSIONS, load_rgb
from cyclegan_cli.errors import CganError
from cyclegan_cli.inference.files import save_image
from cyclegan_cli.inference.stabilize import frame_translator
from cyclegan_cli.inference.video import (
    FRAME_FOLDER_FPS,
    VIDEO_EXTENSIONS,
    VideoError,
    VideoOptions,
    write_video,
)

_DIGITS = re.compile(r"(\d+)")


def natural_key(path: Path) -> list[object]:
    """Sort key that orders ``frame_2`` before ``frame_10``."""
    return [int(part) if part.isdigit() else part.lower() for part in _DIGITS.split(path.name)]


def frame_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The image files directly in ``folder``, in natural order (hidden files skipped)."""
    root = Path(folder)
    if not root.is_dir():
        raise CganError(f"not a folder of frames: {root}")
    files = [p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")
             and p.suffix.lower() in IMAGE_EXTENSIONS]
    if not files:
        raise CganError(f"no frames (image files) in {root}")
    return sorted(files, key=natural_key)


def _batches(files: list[Path], size: int) -> Iterator[list[np.ndarray]]:
    shape = None
    for i in range(0, len(files), size):
        batch = []
        for path in files[i:i + size]:
            frame = load_rgb(path)
            if shape is not None and frame.shape != shape:
                raise CganError(f"{path}: {frame.shape[1]}×{frame.shape[0]} differs from the "
                                f"first frame's {shape[1]}×{shape[0]}; frames must share a size")
            shape = frame.shape
            batch.append(frame)
        yield batch


def translate_frames(translator, folder: str | os.PathLike[str], out: str | os.PathLike[str],
                     options: VideoOptions | None = None,
                     on_progress: Callable[[int], None] | None = None) -> int:
    """Translate the frames in ``folder`` in natural order; returns how many.

    ``out`` is a video file (by its extension: the frames are assembled at ``options.fps``,
    default :data:`FRAME_FOLDER_FPS`) or a folder that receives frames with the same names.
    Frames are loaded a batch at a time; ``start``, ``end`` and ``every`` do not apply.
    """
    o = (options or VideoOptions()).check()
    files = frame_files(folder)
    out = Path(out)
    translate = frame_translator(translator, o.stabilize, o.tile)

    def translated() -> Iterator[list[np.ndarray]]:
        for batch in _batches(files, o.batch_size):
            yield translate(batch)
            if on_progress is not None:
                on_progress(len(batch))

    if out.suffix.lower() in VIDEO_EXTENSIONS:
        with Image.open(files[0]) as first:
            size = first.size
        return write_video(translated(), out, size, o.fps or FRAME_FOLDER_FPS, codec=o.codec,
                           quality=o.quality)
    if out.resolve() == Path(folder).resolve():
        raise VideoError(f"{out}: the output folder is the input folder")
    out.mkdir(parents=True, exist_ok=True)
    done = 0
    names = iter(files)
    for batch in translated():
        for frame in batch:
            save_image(Image.fromarray(frame), out / next(names).name)
            done += 1
    return done
