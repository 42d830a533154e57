"""Animated GIFs, GIF to GIF: every frame translated, and the frame count, each frame's
duration and the loop count kept exactly.

(Through ffmpeg, a GIF is resampled to a frame rate: a still GIF became a 10-frame animation.
Pillow's writer merges identical neighbouring frames. So each translated frame is encoded by
Pillow on its own and the frames are put together here, GIF89a block by block.) Torch-free.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from cyclegan_cli.atomic import atomic_open
from cyclegan_cli.data.images import check_size
from cyclegan_cli.errors import ImageReadError
from cyclegan_cli.inference.stabilize import frame_translator
from cyclegan_cli.inference.video import VideoError, VideoOptions

DEFAULT_DURATION_MS = 100  # a frame without a duration (as browsers show it)


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[Image.Image]:
    """The GIF, size-checked; any failure to read it (now or while its frames are decoded)
    is a VideoError naming it."""
    try:
        with Image.open(path) as im:
            check_size(path, im.width, im.height)
            yield im
    except ImageReadError as exc:
        raise VideoError(f"{path}: {exc.reason}") from None
    except VideoError:
        raise
    except Exception as exc:  # Pillow raises many kinds for a damaged file (IndexError too)
        reason = str(exc).strip() or type(exc).__name__
        raise VideoError(f"{path}: not a readable GIF ({reason})") from None


def gif_frames(path: Path) -> tuple[int, list[int], int | None]:
    """(frame count, each frame's duration in ms, loop count: 0 = forever, None = once).
    Every frame is decoded, so a damaged one is found here, before any work."""
    with _opened(path) as im:
        durations = []
        for frame in ImageSequence.Iterator(im):
            frame.load()
            durations.append(int(frame.info.get("duration") or DEFAULT_DURATION_MS))
        return len(durations), durations, im.info.get("loop")


def _rgb_frames(path: Path, batch: int, keep: list[int]) -> Iterator[list[np.ndarray]]:
    """The frames with index in ``keep`` as full RGB images (later frames composited onto
    earlier ones as GIF disposal says), ``batch`` at a time."""
    wanted, out = set(keep), []
    with _opened(path) as im:
        for index, frame in enumerate(ImageSequence.Iterator(im)):
            if index in wanted:
                out.append(np.asarray(frame.convert("RGB")))
                if len(out) == batch:
                    yield out
                    out = []
    if out:
        yield out


def _frame_blocks(frame: np.ndarray) -> bytes:
    """One frame as a GIF image descriptor with its own colour table and LZW data (Pillow
    encodes it alone; its global table becomes the frame's local table)."""
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="GIF")
    data = buf.getvalue()
    packed = data[10]
    table = 3 * (2 ** ((packed & 0x07) + 1)) if packed & 0x80 else 0
    pos = 13
    global_table, pos = data[pos:pos + table], pos + table
    while data[pos] == 0x21:  # extensions before the image: skip them (we write our own)
        pos += 2
        while data[pos]:
            pos += data[pos] + 1
        pos += 1
    if data[pos] != 0x2C:
        raise VideoError("a translated frame could not be encoded as GIF")
    descriptor, rest = bytearray(data[pos:pos + 10]), data[pos + 10:data.rindex(b"\x3b")]
    if global_table and not descriptor[9] & 0x80:  # move the global table in as local one
        descriptor[9] = (descriptor[9] & 0x78) | 0x80 | (packed & 0x07)
        return bytes(descriptor) + global_table + rest
    return bytes(descriptor) + rest


def write_gif(frames: list[bytes], size: tuple[int, int], durations: list[int],
              loop: int | None, dst: Path) -> None:
    """Put encoded frames (:func:`_frame_blocks`) together into ``dst``, atomically, each
    shown for its duration (ms, in GIF's 10 ms steps)."""
    width, height = size
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0))
    if loop is not None:
        out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", loop) + b"\x00"
    for blocks, ms in zip(frames, durations, strict=True):
        out += b"\x21\xf9\x04\x00" + struct.pack("<H", max(0, round(ms / 10))) + b"\x00\x00"
        out += blocks
    out += b"\x3b"
    with atomic_open(dst, "wb") as fh:
        fh.write(bytes(out))


def translate_gif(translator, src: str | os.PathLike[str], dst: str | os.PathLike[str],
                  options: VideoOptions | None = None,
                  on_progress: Callable[[int], None] | None = None) -> int:
    """Translate an animated (or still) GIF into a GIF with the same frames, durations and
    loop count; ``start``/``end``/``every`` pick frames, each kept frame lasting as long as
    the frames it stands for. Returns the number of frames written."""
    o = (options or VideoOptions()).check()
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise VideoError(f"{dst}: the output would overwrite the input")
    count, durations, loop = gif_frames(src)
    keep = list(range(o.start, count if o.end is None else min(o.end, count), o.every))
    if not keep:
        raise VideoError(f"{src}: no frames in the chosen range")
    shown = [sum(durations[i:min(i + o.every, count)]) for i in keep]
    translate = frame_translator(translator, o.stabilize, o.tile)
    encoded: list[bytes] = []
    size = (0, 0)
    for batch in _rgb_frames(src, o.batch_size, keep):
        size = (batch[0].shape[1], batch[0].shape[0])
        encoded += [_frame_blocks(frame) for frame in translate(batch)]
        if on_progress is not None:
            on_progress(len(batch))
    write_gif(encoded, size, shown, loop, dst)
    return len(encoded)
