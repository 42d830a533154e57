"""What ``cgan translate`` does with its inputs, decided before any work: which are images,
videos, animated GIFs or folders of frames, where each output goes, and which share of them
this job takes (``--shard``). Also the model to translate with, by name, file or run.

Torch-free. The CLI builds a :class:`TranslationPlan`, loads the model with
:func:`open_translator`, and runs the plan's parts; tests build plans without the CLI.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cyclegan_cli.atomic import ensure_writable
from cyclegan_cli.data.images import IMAGE_EXTENSIONS
from cyclegan_cli.errors import CganError
from cyclegan_cli.inference.files import Job, parse_shard, plan_jobs, take_shard
from cyclegan_cli.inference.resolve import resolve_model
from cyclegan_cli.inference.video import VideoError, is_video, video_output

GifFrames = Literal["all", "first"]


StreamKind = Literal["video", "gif", "frames"]


@dataclass(frozen=True)
class Stream:
    """A video, an animated GIF or a folder of frames, and where its translation goes.
    ``kind``: ``gif`` for GIF to GIF (frames and durations kept exactly), ``video`` for the
    rest through ffmpeg, ``frames`` for a folder of frames (into frames or a video)."""

    src: Path
    dst: Path
    kind: StreamKind = "video"

    @classmethod
    def of(cls, src: Path, dst: Path) -> Stream:
        gif = src.suffix.lower() == dst.suffix.lower() == ".gif"
        return cls(src, dst, "gif" if gif else "video")

    def describe(self, options: Any) -> tuple[int, str]:
        """(frames it will translate, one line about it): reads the file's header only."""
        if self.kind == "frames":
            from cyclegan_cli.inference.frames import frame_files

            total = len(frame_files(self.src))
            return total, f"{total} frames"
        if self.kind == "gif":
            from cyclegan_cli.inference.gif import gif_frames

            count, durations, _ = gif_frames(self.src)
            picked = len(range(options.start, count if options.end is None
                               else min(options.end, count), options.every))
            return picked, f"{count} frames, {sum(durations) / 1000:g} s"
        from cyclegan_cli.inference.video import probe_video, selected_frames

        clip = probe_video(self.src, exact=False)
        picked = selected_frames(clip.frames, options.start, options.end, options.every)
        return picked, f"~{clip.frames} frames {clip.width}×{clip.height} at {clip.fps:g} fps"

    def translate(self, translator: Any, options: Any,
                  on_progress: Callable[[int], None] | None = None) -> int:
        """Translate it; returns the frames written."""
        if self.kind == "frames":
            from cyclegan_cli.inference.frames import translate_frames as run
        elif self.kind == "gif":
            from cyclegan_cli.inference.gif import translate_gif as run
        else:
            from cyclegan_cli.inference.video import translate_video as run
        return run(translator, self.src, self.dst, options, on_progress=on_progress)


@dataclass
class TranslationPlan:
    """The work of one ``cgan translate`` run.

    - ``images``: still images (GIFs' first frames with ``gif_frames="first"``);
    - ``videos``: video files and animated GIFs (given directly or found in folders);
    - ``sequences``: folders of numbered frames, translated in order (with ``to_video`` or
      ``stabilize``; otherwise a folder's frames are plain images);
    - ``failed``: inputs already known to fail, with the reason;
    - ``total``: inputs before sharding; ``shard``: (K, N) when this job takes a share.
    """

    images: list[Job] = field(default_factory=list)
    videos: list[Stream] = field(default_factory=list)
    sequences: list[Stream] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    total: int = 0
    shard: tuple[int, int] | None = None

    @property
    def count(self) -> int:
        """Inputs this job translates."""
        return len(self.images) + len(self.videos) + len(self.sequences)

    def outputs(self) -> list[Path]:
        """Every file this job will write (a frame folder's frames included)."""
        from cyclegan_cli.inference.frames import frame_files
        from cyclegan_cli.inference.video import VIDEO_EXTENSIONS

        files = [j.dst for j in self.images] + [v.dst for v in self.videos]
        for seq in self.sequences:
            if seq.dst.suffix.lower() in VIDEO_EXTENSIONS:
                files.append(seq.dst)
            else:
                with contextlib.suppress(CganError):  # (reported when it is translated)
                    files += [seq.dst / f.name for f in frame_files(seq.src)]
        return files

    def check_writable(self) -> None:
        """Before any work: the folders the outputs go to can be made and written to; an
        OSError names the folder, a file in the way is a CganError."""
        parents = sorted({p.parent for p in self.outputs()}, key=lambda p: len(p.parts))
        roots: list[Path] = []
        for folder in parents:  # a folder made inside a writable one is writable too
            if not any(folder.is_relative_to(root) for root in roots):
                roots.append(folder)
        for folder in roots:
            for above in (folder, *folder.parents):
                if above.exists():
                    if not above.is_dir():
                        raise CganError(f"{above} is a file, not a folder; choose another -o")
                    break
            ensure_writable(folder)

    @classmethod
    def build(cls, paths: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
              fmt: str | None = None, gif_frames: GifFrames = "all",
              to_video: str | os.PathLike[str] | None = None, stabilize: bool = False,
              shard: str | None = None, allow_inside_input: bool = False) -> TranslationPlan:
        """Sort ``paths`` into images, videos and frame folders, with their outputs under
        ``out``. CganError (before any work) for inputs that cannot make sense together."""
        inputs, out_dir = [Path(p) for p in paths], Path(out)
        direct = [p for p in inputs if p.is_file() and _streamed(p, gif_frames)]
        rest = [p for p in inputs if p not in direct]
        folders = [p for p in rest if p.is_dir()] if to_video or stabilize else []
        if to_video and (len(folders) != 1 or len(inputs) != 1):
            raise CganError("--to-video takes exactly one folder of frames")
        rest = [p for p in rest if p not in folders]
        plan = cls(images=_image_jobs(rest, out_dir, fmt, allow_inside_input))
        plan._sort_gifs(gif_frames, fmt)
        plan._add_videos(direct, out_dir)
        plan.sequences = [Stream(f, Path(to_video) if to_video else out_dir / f.name, "frames")
                          for f in folders]
        plan.total = plan.count
        if shard is not None:
            plan._take_shard(parse_shard(shard))
        return plan

    def _sort_gifs(self, gif_frames: GifFrames, fmt: str | None) -> None:
        """GIFs found in folders: animated ones go the video way (to their mirrored paths);
        with ``first``, still PNGs (unless ``fmt``)."""
        gifs = [j for j in self.images if j.src.suffix.lower() == ".gif"]
        if gif_frames == "all":
            self.images = [j for j in self.images if j not in gifs]
            self.videos = [Stream.of(j.src, j.dst) for j in gifs]
        elif fmt is None:
            self.images = [Job(j.src, j.dst.with_suffix(".png")) if j in gifs else j
                           for j in self.images]

    def _add_videos(self, direct: list[Path], out_dir: Path) -> None:
        """Videos given directly, before those found in folders: into ``out_dir``, or into
        ``out_dir`` itself when it names a video file and there is one video in all."""
        found, self.videos = self.videos, []
        single = len(direct) + len(found) == 1
        for src in direct:
            try:
                self.videos.append(Stream.of(src, video_output(src, out_dir, single=single)))
            except VideoError as exc:
                self.failed.append((src, str(exc).removeprefix(f"{src}: ")))
        self.videos += found

    def _take_shard(self, shard: tuple[int, int]) -> None:
        """Keep shard K of N of each kind (dealt out separately, so shards stay even)."""
        self.shard = shard
        self.images = take_shard(self.images, lambda j: str(j.src), shard)
        self.videos = take_shard(self.videos, lambda v: str(v.src), shard)
        self.sequences = take_shard(self.sequences, lambda v: str(v.src), shard)


def _image_jobs(inputs: list[Path], out: Path, fmt: str | None,
                allow_inside_input: bool) -> list[Job]:
    """The image jobs; one input image with ``-o`` naming an image file writes that file."""
    if not inputs:
        return []
    single = len(inputs) == 1 and inputs[0].is_file()
    if single and out.suffix.lower() in IMAGE_EXTENSIONS and not out.is_dir():
        if out.resolve() == inputs[0].resolve():
            raise CganError(f"refusing to overwrite the input {out}; choose another -o")
        return [Job(inputs[0], out)]
    return plan_jobs(inputs, out, fmt, allow_inside_input)


def _streamed(path: Path, gif_frames: GifFrames) -> bool:
    """Whether a file goes through the video path (an animated GIF does, unless ``first``)."""
    return is_video(path) and (gif_frames == "all" or path.suffix.lower() != ".gif")


def open_translator(model: str | os.PathLike[str], direction: str | None = None,
                    backend: str | None = None, provider: str = "auto",
                    checkpoint: str | None = None, **options: Any) -> Any:
    """The :class:`~cyclegan_cli.inference.translator.Translator` for ``--model`` (an ONNX
    file, a name in the model folders, or a run directory: its exported file, else its
    checkpoint through the torch backend; ``checkpoint`` picks one, see
    :meth:`~cyclegan_cli.rundir.RunDir.choose_checkpoint`) and ``direction`` (None: the
    file's own; else AtoB, or a one-direction model's own)."""
    from cyclegan_cli.inference.translator import load_model

    path, found = resolve_model(model, direction, checkpoint=checkpoint, backend=backend)
    backend = backend or found
    return load_model(path, backend=backend, direction=direction, provider=provider,
                      checkpoint=checkpoint, **options)
