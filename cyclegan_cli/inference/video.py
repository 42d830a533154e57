"""Translating video files, streamed through ffmpeg (imageio-ffmpeg's bundled binary).

Frames are read and written one batch at a time, so memory stays flat whatever the clip's
length. Frame rate, size and frame count are kept, and the audio track is copied when there is
one. The output is written under a temporary name and renamed at the end, so an interrupted run
never leaves a half-written file under the final name. Torch-free.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from cyclegan_cli.atomic import new_file_mode, new_temporary
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


def _batches(raw: Iterable[bytes], width: int, height: int, size: int, start: int,
             end: int | None, every: int) -> Iterator[list[np.ndarray]]:
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
    counted = _Counted(raw)
    with contextlib.closing(raw):
        info = _info(src, meta, _header_frames(meta))
        copy_audio = o.audio and o.whole and info.audio_codec is not None

        def translated() -> Iterator[list[np.ndarray]]:
            for batch in _batches(counted, info.width, info.height, o.batch_size, o.start,
                                  o.end, o.every):
                yield translate(batch)
                if on_progress is not None:
                    on_progress(len(batch))

        def complete() -> None:  # before the output takes its name
            expected = info.frames if o.end is None else min(o.end, info.frames)
            check_complete(src, counted.count, expected, stopped_early=o.end is not None
                           and counted.count >= o.end)

        written = write_video(translated(), dst, (info.width, info.height),
                              o.fps or info.fps / o.every, codec=o.codec, quality=o.quality,
                              audio_from=src if copy_audio else None, verify=complete)
    if written == 0:
        raise VideoError(f"{src}: no frames in the chosen range")
    return written


class _Counted:
    """An iterator of raw frames that counts what it hands out."""

    def __init__(self, raw: Iterator[bytes]) -> None:
        self.raw, self.count = raw, 0

    def __iter__(self) -> Iterator[bytes]:
        for buf in self.raw:
            self.count += 1
            yield buf


SHORT_READ = 0.02  # frames may be missing against the header's estimate before it is a doubt


def check_complete(src: Path, decoded: int, announced: int, stopped_early: bool = False) -> None:
    """VideoError when fewer frames decoded than the container announced and ffmpeg finds
    the file damaged (a truncated clip); a short count with a sound file (the header's
    duration counts an audio track that runs longer) passes."""
    if stopped_early or decoded >= announced - max(2, SHORT_READ * announced):
        return
    problems = _decode_errors(src)
    if problems:
        raise VideoError(f"{src}: the clip is truncated or damaged: {decoded} of about "
                         f"{announced} frames could be decoded ({problems})")


def _decode_errors(path: Path) -> str:
    """ffmpeg's first error while decoding the video stream ('' when it decodes cleanly)."""
    exe = _ffmpeg().get_ffmpeg_exe()  # type: ignore[attr-defined]
    run = subprocess.run([exe, "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "null",
                          "-"], capture_output=True, text=True, errors="replace", timeout=3600,
                         check=False)
    lines = [line.strip() for line in run.stderr.splitlines() if line.strip()]
    return lines[0][:160] if lines else ""


def _check_container(dst: Path) -> None:
    if dst.suffix.lower() not in VIDEO_EXTENSIONS:
        raise VideoError(f"{dst}: unknown video container {dst.suffix.lower() or '(none)'}; "
                         f"use one of {', '.join(VIDEO_EXTENSIONS)}")


_MUXERS = {".mp4": "mp4", ".m4v": "ipod", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
           ".avi": "avi", ".gif": "gif"}


def _quality_params(codec: str, quality: float | None) -> list[str]:
    """Encoder options for ``quality`` on 0 (smallest file) .. 10 (best), per codec family."""
    if quality is None or codec == "gif":
        return []
    worst = 1 - quality / 10.0
    if codec in ("libx264", "libx264rgb", "libx265"):
        return ["-crf", str(round(worst * 51))]
    if codec in ("libvpx-vp9", "libvpx"):
        return ["-crf", str(round(worst * 63)), "-b:v", "0"]
    return ["-qscale:v", str(round(worst * 30) + 1)]


_FFMPEG_PREFIX = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\]\s*")  # "[vost#0:0 @ 0x55..] "


class _Encoder:
    """ffmpeg encoding raw RGB frames from a pipe into ``tmp``; every failure (a bad codec,
    a full disk, a crash) is a VideoError naming ``dst`` and ffmpeg's reason."""

    def __init__(self, cmd: list[str], dst: Path) -> None:
        self.dst = dst
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close(); a pipe could block)
        # in a group of its own: Ctrl-C and SIGTERM are ours to handle (we stop it)
        group = ({"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
                 if os.name == "nt" else {"start_new_session": True})
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=self.log, **group)

    def reason(self) -> str:
        self.log.seek(0)
        text = self.log.read().decode("utf-8", "replace")
        lines = [_FFMPEG_PREFIX.sub("", line).strip() for line in text.splitlines()]
        lines = [line for line in lines if line]
        return lines[0][:200] if lines else f"ffmpeg exit status {self.proc.returncode}"

    def fail(self) -> VideoError:
        return VideoError(f"{self.dst}: the video could not be written ({self.reason()})")

    def send(self, frame: np.ndarray) -> None:
        try:
            self.proc.stdin.write(np.ascontiguousarray(frame).tobytes())  # type: ignore[union-attr]
        except (BrokenPipeError, OSError):
            self.proc.wait()
            raise self.fail() from None

    def finish(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.proc.stdin.close()  # type: ignore[union-attr]
        if self.proc.wait() != 0:
            raise self.fail()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        self.kill()
        self.log.close()


def write_video(batches: Iterator[list[np.ndarray]], dst: Path, size: tuple[int, int],
                fps: float, *, codec: str | None = None, quality: float | None = 7.0,
                audio_from: Path | None = None, verify: Callable[[], None] | None = None
                ) -> int:
    """Encode batches of HxWx3 uint8 frames (``size`` = (width, height)) into ``dst``
    atomically: written under a hidden temporary name (the same naming as every other
    output, see :mod:`cyclegan_cli.atomic`) and renamed once ffmpeg has finished without an
    error; removed on any error or interruption, when ``dst`` (if it existed) is left as it
    was. ``audio_from``: a file whose audio track is copied in (not into a GIF, which has
    none). ``quality``: 0 (smallest) to 10 (best). ``verify`` runs once every frame is
    encoded, before the rename: its error leaves no output."""
    _check_container(dst)
    suffix = dst.suffix.lower()
    width, height = size
    codec = codec or _CODECS[suffix]
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_temporary(dst)
    audio = audio_from is not None and suffix in _AUDIO
    pix_fmt = ("rgb8" if suffix == ".gif" else "yuv420p"
               if width % 2 == 0 and height % 2 == 0 else "yuv444p")
    cmd = [str(_ffmpeg().get_ffmpeg_exe()), "-y", "-v", "error",  # type: ignore[attr-defined]
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
           "-r", str(Fraction(fps).limit_denominator()), "-i", "-",
           *(["-i", str(audio_from), "-map", "0:v:0", "-map", "1:a:0", "-acodec",
              _AUDIO[suffix]] if audio else ["-an"]),
           "-vcodec", codec, "-pix_fmt", pix_fmt, *_quality_params(codec, quality),
           "-f", _MUXERS[suffix], str(tmp)]
    written = 0
    encoder = _Encoder(cmd, dst)
    try:
        for batch in batches:
            for frame in batch:
                encoder.send(frame)
            written += len(batch)
        encoder.finish()
        if verify is not None:
            verify()
        if written:
            if tmp.stat().st_size == 0:
                raise VideoError(f"{dst}: the video could not be written (ffmpeg wrote nothing)")
            tmp.chmod(new_file_mode())
            os.replace(tmp, dst)
    except BaseException:
        encoder.kill()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    finally:
        encoder.close()
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # nothing was written
    return written
