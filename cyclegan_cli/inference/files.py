"""Translating image files and folders: plan the outputs, batch same-size images, write atomically.

Torch-free (numpy, pillow and the inference core). Inputs are never overwritten; one bad file
is reported by name and the rest still complete.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

from cyclegan_cli.atomic import atomic_open
from cyclegan_cli.data.images import IMAGE_EXTENSIONS, list_images, open_image, probe_image
from cyclegan_cli.errors import CganError, ImageReadError, describe_os_error
from cyclegan_cli.inference.imageops import image_to_array

FORMATS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp", "tif": ".tif",
           "tiff": ".tif", "bmp": ".bmp"}
_NO_ALPHA = {".jpg", ".jpeg", ".bmp"}
T = TypeVar("T")


@dataclass(frozen=True)
class Job:
    """One input file and where its translation goes."""

    src: Path
    dst: Path


@dataclass
class Summary:
    """What a translation batch did."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N) with 0 <= K < N; CganError otherwise."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        k = n = -1
    if not 0 <= k < n:
        raise CganError(f"--shard {text}: expected K/N with 0 <= K < N, e.g. --shard 0/4 ... "
                        f"--shard 3/4 (SLURM: --shard $SLURM_ARRAY_TASK_ID/N)")
    return k, n


def take_shard(items: Iterable[T], key: Callable[[T], str], shard: tuple[int, int] | None
               ) -> list[T]:
    """Shard K of N of ``items``: every N-th item of the list sorted by ``key``, starting at K.
    The N shards of the same inputs cover each item exactly once, whatever the machine."""
    ordered = sorted(items, key=key)
    if shard is None:
        return ordered
    k, n = shard
    return ordered[k::n]


def _is_inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def plan_jobs(inputs: Iterable[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
              fmt: str | None = None, allow_inside_input: bool = False) -> list[Job]:
    """Map every input image to its output path (folders mirrored, recursively).

    Errors before any work: a missing input, an output folder inside an input folder (unless
    allowed), two inputs that would write the same output, or an output that is an input.
    """
    out = Path(out_dir)
    suffix = None
    if fmt is not None:
        if fmt.lower() not in FORMATS:
            raise CganError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
        suffix = FORMATS[fmt.lower()]
    jobs: list[Job] = []
    for item in map(Path, inputs):
        if item.is_dir():
            if _is_inside(out, item) and not allow_inside_input:
                raise CganError(f"the output folder {out} is inside the input folder {item}; "
                                "choose another -o or pass --allow-inside-input")
            nested = out.resolve() != item.resolve()  # earlier outputs are not inputs
            pairs = [(f, f.relative_to(item)) for f in list_images(item)
                     if not (nested and _is_inside(f, out))]
        elif item.is_file():
            pairs = [(item, Path(item.name))]
        else:
            raise CganError(f"input not found: {item}")
        for src, rel in pairs:
            dst = out / rel
            jobs.append(Job(src, dst.with_suffix(suffix) if suffix else dst))
    if not jobs:
        raise CganError("no input images given")
    sources = {j.src.resolve() for j in jobs}
    seen: dict[Path, Path] = {}
    for job in jobs:
        key = job.dst.resolve()
        if key in sources:
            raise CganError(f"refusing to overwrite the input {job.dst}; choose another -o")
        if key in seen:
            raise CganError(f"{seen[key]} and {job.src} would both be written to {job.dst}")
        seen[key] = job.src
    return jobs


def save_image(img: Image.Image, dst: Path) -> None:
    """Write atomically in the format the suffix names (alpha dropped where it can't be kept)."""
    suffix = dst.suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        raise CganError(f"cannot write {dst}: unknown image suffix")
    if suffix in _NO_ALPHA and img.mode != "RGB":
        img = img.convert("RGB")
    fmt = Image.registered_extensions()[suffix]
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    with atomic_open(dst, "wb") as fh:
        img.save(fh, format=fmt, **options)


def _batches(jobs: list[Job], batch_size: int, max_pixels: int
             ) -> tuple[list[list[Job]], list[tuple[Path, str]]]:
    """Group jobs whose images are RGB of one size into batches; others go one at a time."""
    groups: dict[tuple[int, int] | Job, list[Job]] = {}
    failed: list[tuple[Path, str]] = []
    for job in jobs:
        try:
            w, h, mode = probe_image(job.src)
        except ImageReadError as err:
            failed.append((job.src, err.reason))
            continue
        key = (w, h) if mode == "RGB" and w * h <= max_pixels else job
        groups.setdefault(key, []).append(job)
    batches = [group[i : i + batch_size] for group in groups.values()
               for i in range(0, len(group), batch_size)]
    return batches, failed


def translate_files(translator, jobs: list[Job], *, batch_size: int = 4,
                    skip_existing: bool = False, tile: int | None = None,
                    on_progress: Callable[[int], None] | None = None) -> Summary:
    """Translate every job; unreadable inputs are recorded in the summary, never raised.
    Same-size RGB images up to the translator's ``max_pixels`` share batches."""
    summary = Summary()
    todo = []
    for job in jobs:
        if skip_existing and job.dst.exists():
            summary.skipped.append(job.dst)
        else:
            todo.append(job)
    if on_progress and summary.skipped:
        on_progress(len(summary.skipped))
    batches, summary.failed = _batches(todo, max(1, batch_size), translator.max_pixels)
    if on_progress and summary.failed:
        on_progress(len(summary.failed))
    for batch in batches:
        images: list[tuple[Job, np.ndarray]] = []
        for job in batch:
            try:  # as an array at once: the decoded image is not kept beside it
                images.append((job, image_to_array(open_image(job.src))))
            except ImageReadError as err:
                summary.failed.append((job.src, err.reason))
        try:
            shapes = {a.shape for _, a in images}  # EXIF rotation can change a probed size
            if len(images) > 1 and len(shapes) == 1 and tile is None:
                outputs = translator.translate_batch([a for _, a in images])
            else:
                outputs = [translator.translate_array(a, tile=tile) for _, a in images]
        except Exception as err:  # one failing batch (e.g. a runtime error) spares the rest
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            summary.failed.extend((job.src, reason) for job, _ in images)
            outputs = []
        for (job, _), out in zip(images, outputs, strict=False):
            try:
                save_image(Image.fromarray(out, "RGBA" if out.shape[2] == 4 else "RGB"),
                           job.dst)
                summary.written.append(job.dst)
            except OSError as err:  # full disk, read-only folder...: named, the rest go on
                summary.failed.append((job.src, describe_os_error(err, job.dst)))
            except CganError as err:
                summary.failed.append((job.src, f"cannot write {job.dst}: {err}"))
        if on_progress:
            on_progress(len(batch))
    return summary
