"""``cgan models pull NAME|URL``: a published model or any ``.pth``/``.onnx`` address, downloaded
(resumable, checked: :mod:`cyclegan_cli.download`) into the download cache, then
into the user models folder as ``NAME-AtoB.onnx`` — a ``.pth`` converted by the reference import
and verified against torch, an ``.onnx`` checked to be a cyclegan-cli model — with where it came
from and under which terms in its metadata. ``cgan models rm NAME`` removes one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import platformdirs

from cyclegan_cli.atomic import atomic_write
from cyclegan_cli.download import download
from cyclegan_cli.errors import CganError
from cyclegan_cli.inference.naming import SUFFIX, model_filename, model_name
from cyclegan_cli.inference.published import PUBLISHED, REFERENCE_LICENCE, REFERENCE_SOURCE
from cyclegan_cli.inference.resolve import user_models_dir


def download_cache() -> Path:
    """Where downloads wait (and resume) before they become models."""
    return Path(platformdirs.user_cache_dir("cyclegan-cli", appauthor=False)) / "downloads"


@dataclass
class PullResult:
    name: str
    files: list[Path] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # what to tell the user, in order


def _source(source: str) -> tuple[str, str, str, str, str]:
    """(name, url, domain_from, domain_to, licence) of a published name or an address."""
    if source in PUBLISHED:
        p = PUBLISHED[source]
        return p.name, p.url, p.domain_from, p.domain_to, REFERENCE_LICENCE
    parsed = urlparse(source)
    if parsed.scheme not in ("http", "https") or not parsed.path.endswith((".pth", SUFFIX)):
        names = ", ".join(PUBLISHED)
        raise CganError(f"not a published model nor an http(s) address of a .pth or .onnx "
                        f"file: {source} (published: {names})")
    stem = Path(parsed.path).stem
    name = re.sub(r"[^A-Za-z0-9_.]+", "_", model_name(stem)) or "model"
    return name, source, "A", "B", "unknown (check the terms where it was published)"


def pull(source: str, *, name: str | None = None, sha256: str | None = None,
         fp16: bool = False, int8: bool = False, models_dir: Path | None = None,
         on_progress: Callable[[int, int | None], None] | None = None,
         on_detected: Callable[[str], None] | None = None) -> PullResult:
    """Download ``source`` (a name in :data:`PUBLISHED` or an address) and install it."""
    found, url, domain_from, domain_to, licence = _source(source)
    name = name or found
    folder = models_dir or user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    cached = download(url, download_cache() / Path(urlparse(url).path).name, sha256=sha256,
                      on_progress=on_progress)
    result = PullResult(name)
    if cached.suffix == SUFFIX:
        result.files.append(_install_onnx(cached, folder, name))
        return result
    from cyclegan_cli.export import add_int8, export_reference

    origin = {"url": url, "licence": licence,
              "published_by": REFERENCE_SOURCE if source in PUBLISHED else url}
    exported = export_reference(cached, "AtoB", folder / model_filename(name, "AtoB"),
                                domain_from=domain_from, domain_to=domain_to, fp16=fp16,
                                source=url, origin=origin, on_detected=on_detected)
    if int8:
        exported = add_int8(exported)
    result.files += [p for p in (exported.path, exported.fp16_path, exported.int8_path) if p]
    result.lines.append(f"export parity vs torch: max abs diff {exported.max_abs_diff:.2e}")
    if exported.int8_report is not None:
        result.lines.append(f"int8: {exported.int8_report.describe()}")
    result.lines += [f"warning: {w}" for w in exported.warnings]
    return result


def _install_onnx(cached: Path, folder: Path, name: str) -> Path:
    """Copy a downloaded ONNX file into ``folder`` under ``name`` once it proves to be a
    cyclegan-cli model (its metadata names the direction and precision)."""
    from cyclegan_cli.inference.catalog import read_entry

    entry = read_entry(cached)
    if entry.problem:
        raise CganError(f"{cached.name} is not a usable cyclegan-cli model: {entry.problem}")
    twin = None if entry.precision == "fp32" else entry.precision
    target = folder / model_filename(name, entry.direction, twin)
    atomic_write(target, lambda fh: fh.write(cached.read_bytes()))
    return target


def remove(name: str, models_dir: Path | None = None) -> list[Path]:
    """Delete the user models folder's files of model ``name`` (every direction and twin)."""
    folder = models_dir or user_models_dir()
    files = sorted(p for p in folder.glob(f"*{SUFFIX}") if model_name(p) == name) \
        if folder.is_dir() else []
    if not files:
        raise CganError(f"no model named {name} in {folder}")
    for path in files:
        path.unlink()
    return files

