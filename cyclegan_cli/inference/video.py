"""Translating video files, streamed through ffmpeg (imageio-ffmpeg's bundled binary).

Frames are read and written one batch at a time, so memory stays flat whatever the clip's
length. Frame rate, size and frame count are kept, and the audio track is copied when there is
one. The output is written under a temporary name and renamed at the end, so an interrupted run
never leaves a half-written file under the final name. Torch-free.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cyclegan_cli.errors import CganError
from cyclegan_cli.inference.limits import check_tile
from cyclegan_cli.inference.stabilize import frame_translator

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif", ".m4v")  # in and out
READ_ONLY_EXTENSIONS = (".flv", ".mpg", ".mpeg", ".wmv", ".ts", ".m2ts", ".3gp")  # in only
# The video and audio encoders used for each output container unless --codec is given.
_CODECS = {".mp4": "libx264", ".m4v": "libx264", ".mov": "libx264", ".mkv": "libx264",
           ".avi": "libx264", ".webm": "libvpx-vp9", ".gif": "gif"}
_AUDIO = {".mp4": "aac", ".m4v": "aac", ".mov": "aac", ".mkv": "aac", ".avi": "mp3",
          ".webm": "libopus"}  # gif: no audio


class VideoError(CganError):
    """A video that cannot be read or written."""


FRAME_FOLDER_FPS = 25.0  # frames assembled into a video without --fps


@dataclass(frozen=True)
class VideoOptions:
    """How videos and folders of frames are translated (``cgan translate``'s video options).

    ``start``/``end`` (frame indices, end exclusive) and ``every`` pick part of a clip; the
    output keeps the frame rate (divided by ``every``) unless ``fps`` is given (frame folders:
    :data:`FRAME_FOLDER_FPS`). ``codec`` and ``quality`` (0-10, imageio-ffmpeg's scale) set
    the encoder; ``audio`` copies the audio track of whole clips. ``stabilize`` (a window in
    frames) normalises every frame with statistics averaged over time, which reduces flicker.
    ``tile`` translates every frame in tiles of that side.
    """

    batch_size: int = 8
    fps: float | None = None
    codec: str | None = None
    quality: float | None = 7.0
    start: int = 0
    end: int | None = None
    every: int = 1
    audio: bool = True
    stabilize: float | None = None
    tile: int | None = None

    def check(self) -> VideoOptions:
        """VideoError for options that cannot work (before any file is opened)."""
        if self.batch_size < 1 or self.every < 1 or self.start < 0 or (
                self.end is not None and self.end <= self.start):
            raise VideoError("need batch size >= 1, --every >= 1 and 0 <= --start < --end")
        if self.fps is not None and self.fps <= 0:
            raise VideoError(f"--fps must be > 0, not {self.fps:g}")
        if self.stabilize is not None and self.stabilize < 1:
            raise VideoError("--stabilize-frames must be at least 1")
        check_tile(self.tile)
        return self

    @property
    def whole(self) -> bool:
        """Whether every frame of a clip is translated."""
        return self.start == 0 and self.end is None and self.every == 1


@dataclass(frozen=True)
class VideoInfo:
    """What ffmpeg says about a clip."""

    path: Path
    width: int
    height: int
    fps: float
    frames: int
    codec: str
    audio_codec: str | None


def is_video(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` has the extension of a video container ffmpeg reads."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS + READ_ONLY_EXTENSIONS


def _ffmpeg() -> object:
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise VideoError("video needs imageio-ffmpeg (pip install imageio-ffmpeg)") from exc
    return imageio_ffmpeg


def _frames(path: Path) -> tuple[dict, Iterator[bytes]]:
    """(metadata, generator of raw RGB24 frames); a clear error when ffmpeg cannot read it."""
    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    reader = _ffmpeg().read_frames(str(path), pix_fmt="rgb24")  # type: ignore[attr-defined]
    try:
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as exc:
        reader.close()
        streams = _streams(path)
        if streams and "Video:" not in streams:
            raise VideoError(f"{path}: the file has no video stream (0 frames)") from None
        first = str(exc).strip().splitlines()[-1][:160] if str(exc).strip() else "no stream"
        raise VideoError(f"{path}: not a readable video ({first})") from None
    return meta, reader


def _streams(path: Path) -> str:
    """ffmpeg's description of the file's streams ('' when it cannot parse the file)."""
    import subprocess

    exe = _ffmpeg().get_ffmpeg_exe()  # type: ignore[attr-defined]
    run = subprocess.run([exe, "-hide_banner", "-i", str(path)], capture_output=True,
                         text=True, errors="replace", timeout=60, check=False)
    return "\n".join(line for line in run.stderr.splitlines() if "Stream #" in line)


def _info(path: Path, meta: dict, frames: int) -> VideoInfo:
    width, height = meta["size"]
    if frames == 0 or width == 0 or height == 0:
        raise VideoError(f"{path}: the clip has no frames")
    fps = float(meta.get("fps") or 25.0)
    audio = meta.get("audio_codec")
    return VideoInfo(path, int(width), int(height), fps, int(frames),
                     str(meta.get("codec", "?")).strip(", "),
                     str(audio).strip(", ") if audio else None)


def _header_frames(meta: dict) -> int:
    """Frame count from the header: duration × frame rate (for progress bars)."""
    return max(1, round(float(meta.get("duration") or 0) * float(meta.get("fps") or 25.0)))


def probe_video(path: str | os.PathLike[str], exact: bool = True) -> VideoInfo:
    """Size, frame rate, frame count, codec and audio codec of a clip.

    With ``exact`` the frames are counted by decoding the clip (as long as a pass over it);
    otherwise the count is duration × frame rate from the header (for progress bars).
    """
    path = Path(path)
    meta, reader = _frames(path)
    reader.close()
    if not exact:
        return _info(path, meta, _header_frames(meta))
    try:
        frames, _ = _ffmpeg().count_frames_and_secs(str(path))  # type: ignore[attr-defined]
    except (OSError, RuntimeError) as exc:
        raise VideoError(f"{path}: cannot count its frames ({exc})") from None
    return _info(path, meta, frames)


def selected_frames(total: int, start: int = 0, end: int | None = None, every: int = 1) -> int:
    """How many of ``total`` frames ``start``/``end``/``every`` pick."""
    return len(range(start, total if end is None else min(end, total), max(1, every)))


def _batches(raw: Iterator[bytes], width: int, height: int, size: int, start: int, end: int | None,
             every: int) -> Iterator[list[np.ndarray]]:
    batch: list[np.ndarray] = []
    for index, buf in enumerate(raw):
        if end is not None and index >= end:
            break
        if index < start or (index - start) % every:
            continue
        batch.append(np.frombuffer(buf, np.uint8).reshape(height, width, 3))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def video_output(src: Path, out: Path, single: bool) -> Path:
    """Where a video's translation goes: ``out`` itself when it names a video file and there
    is one input video, else ``out/<name>`` with the input's container (mp4 for containers
    that are only read)."""
    if single and out.suffix.lower() in VIDEO_EXTENSIONS:
        return out
    if out.suffix.lower() in VIDEO_EXTENSIONS:
        raise VideoError(f"{out}: several videos need an output folder, not a file name")
    suffix = src.suffix if src.suffix.lower() in VIDEO_EXTENSIONS else ".mp4"
    return out / (src.stem + suffix)


def translate_video(translator, src: str | os.PathLike[str], dst: str | os.PathLike[str],
                    options: VideoOptions | None = None,
                    on_progress: Callable[[int], None] | None = None) -> int:
    """Translate ``src`` frame by frame into ``dst`` (any container ffmpeg writes), as
    ``options`` say; returns the number of frames written. The audio track is copied when
    there is one, the whole clip is used, and the container takes audio."""
    o = (options or VideoOptions()).check()
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise VideoError(f"{dst}: the output would overwrite the input")
    _check_container(dst)
    translate = frame_translator(translator, o.stabilize, o.tile)
    meta, raw = _frames(src)
    with contextlib.closing(raw):
        info = _info(src, meta, _header_frames(meta))
        copy_audio = o.audio and o.whole and info.audio_codec is not None

        def translated() -> Iterator[list[np.ndarray]]:
            for batch in _batches(raw, info.width, info.height, o.batch_size, o.start, o.end,
                                  o.every):
                yield translate(batch)
                if on_progress is not None:
                    on_progress(len(batch))

        written = write_video(translated(), dst, (info.width, info.height),
                              o.fps or info.fps / o.every, codec=o.codec, quality=o.quality,
                              audio_from=src if copy_audio else None)
    if written == 0:
        raise VideoError(f"{src}: no frames in the chosen range")
    return written


def _check_container(dst: Path) -> None:
    if dst.suffix.lower() not in VIDEO_EXTENSIONS:
        raise VideoError(f"{dst}: unknown video container {dst.suffix.lower() or '(none)'}; "
                         f"use one of {', '.join(VIDEO_EXTENSIONS)}")


def write_video(batches: Iterator[list[np.ndarray]], dst: Path, size: tuple[int, int],
                fps: float, *, codec: str | None = None, quality: float | None = 7.0,
                audio_from: Path | None = None) -> int:
    """Encode batches of HxWx3 uint8 frames (``size`` = (width, height)) into ``dst``
    atomically: written under a temporary name and renamed once complete, removed on any
    error or interruption. ``audio_from``: a file whose audio track is copied in (not into
    a GIF, which has none)."""
    _check_container(dst)
    suffix = dst.suffix.lower()
    width, height = size
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.stem}.", suffix=dst.suffix, dir=dst.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    written = 0
    try:
        writer = _ffmpeg().write_frames(  # type: ignore[attr-defined]
            str(tmp), (width, height), fps=fps, codec=codec or _CODECS[suffix],
            quality=None if suffix == ".gif" else quality, macro_block_size=1,
            pix_fmt_out=("rgb8" if suffix == ".gif" else "yuv420p"
                         if width % 2 == 0 and height % 2 == 0 else "yuv444p"),
            output_params=["-y"], ffmpeg_log_level="error",
            audio_path=str(audio_from) if audio_from and suffix in _AUDIO else None,
            audio_codec=_AUDIO.get(suffix) if audio_from else None)
        writer.send(None)
        try:
            for batch in batches:
                for frame in batch:
                    writer.send(np.ascontiguousarray(frame))
                written += len(batch)
        finally:
            writer.close()
        if written:
            os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # nothing was written
    return written
