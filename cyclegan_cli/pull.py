"""``cgan models pull NAME|URL|FILE``: a published model, any ``.pth``/``.onnx`` address, or such a
file already on disk, installed in the user models folder as ``NAME-AtoB.onnx`` (or ``-BtoA``).

Addresses are downloaded (resumable and checked: :mod:`cyclegan_cli.download`) into the
download cache, in a folder of their own per address. A ``.pth`` is converted by the reference
import and verified against torch; an ``.onnx`` must be a cyclegan-cli model. The files are
made in a hidden folder beside the models and moved in only once all of them are checked, so a
failed pull leaves nothing half-made; then the download is deleted. The metadata keeps where it
came from and its licence. ``cgan models rm NAME`` removes a model.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from cyclegan_cli.download import download
from cyclegan_cli.errors import CganError
from cyclegan_cli.inference.metadata import DIRECTIONS
from cyclegan_cli.inference.naming import SUFFIX, TWINS, model_filename, model_name
from cyclegan_cli.inference.published import PUBLISHED, REFERENCE_LICENCE, REFERENCE_SOURCE
from cyclegan_cli.userdirs import user_cache_dir, user_models_dir

NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.]*")  # a model name: no separators, no "-"
UNKNOWN_LICENCE = "unknown (check the terms where it was published)"


def download_cache() -> Path:
    """Where downloads wait (and resume) before they become models."""
    return user_cache_dir() / "downloads"


@dataclass
class PullResult:
    name: str
    direction: str = "AtoB"
    files: list[Path] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # what to tell the user, in order


@dataclass
class _Source:
    name: str
    url: str | None  # None: a local file
    file: Path | None
    domains: tuple[str | None, str | None]
    direction: str | None
    licence: str
    published_by: str


def _source(source: str) -> _Source:
    if source in PUBLISHED:
        p = PUBLISHED[source]
        return _Source(p.name, p.url, None, (p.domain_from, p.domain_to), "AtoB",
                       REFERENCE_LICENCE, REFERENCE_SOURCE)
    local = Path(source).expanduser()
    if local.is_file() and local.suffix in (".pth", SUFFIX):
        return _Source(_clean(model_name(local)), None, local, (None, None), None,
                       UNKNOWN_LICENCE, str(local.resolve()))
    parsed = urlparse(source)
    if parsed.scheme not in ("http", "https") or not parsed.path.endswith((".pth", SUFFIX)):
        raise CganError(f"not a published model, an http(s) address of a .pth or .onnx file, "
                        f"nor such a file: {source} (published: {', '.join(PUBLISHED)})")
    return _Source(_clean(model_name(Path(parsed.path).name)), source, None, (None, None),
                   None, UNKNOWN_LICENCE, source)


def _clean(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "_", stem).strip("._") or "model"


def check_name(name: str) -> str:
    """``name`` when it can name a model file (letters, digits, ``_`` and ``.``), else
    CganError."""
    if not NAME.fullmatch(name) or ".." in name:
        raise CganError(f"--name {name!r}: use letters, digits, _ and . only (no folders, no -)")
    return name


def pull(source: str, *, name: str | None = None, direction: str | None = None,
         sha256: str | None = None, fp16: bool = False, int8: bool = False,
         models_dir: Path | None = None,
         on_progress: Callable[[int, int | None], None] | None = None,
         on_detected: Callable[[str], None] | None = None) -> PullResult:
    """Install ``source`` (a name in :data:`PUBLISHED`, an address or a file) in
    ``models_dir`` (default: the user models folder). ``direction`` is what the generator
    does (default: a published model's, else what the file's name or keys say)."""
    src = _source(source)
    name = check_name(name or src.name)
    if direction is not None and direction not in DIRECTIONS:
        raise CganError(f"unknown direction {direction!r}; use AtoB or BtoA")
    folder = models_dir or user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    file = src.file
    if src.url is not None:
        key = hashlib.sha256(src.url.encode()).hexdigest()[:16]  # an address, a folder
        file = download(src.url, download_cache() / key / Path(urlparse(src.url).path).name,
                        sha256=sha256, on_progress=on_progress)
    assert file is not None
    is_onnx = file.suffix == SUFFIX
    if is_onnx and (fp16 or int8):
        raise CganError("--fp16 and --int8 make copies of a converted .pth; for an .onnx "
                        "model, export its run with cgan export --fp16 / --quantize int8")
    with tempfile.TemporaryDirectory(prefix=".pull-", dir=folder) as staging:
        made = (_check_onnx(file, Path(staging)) if is_onnx else
                _convert(file, Path(staging), src, direction, fp16, int8, on_detected))
        result = PullResult(name, made.direction, lines=made.lines)
        # the checked files replace any earlier pull of this name and direction
        for old in folder.glob(f"{name}-{made.direction}*{SUFFIX}"):
            if model_name(old) == name:
                old.unlink()
        for twin, path in made.files.items():
            target = folder / model_filename(name, made.direction, twin)
            shutil.move(str(path), target)
            result.files.append(target)
    if src.url is not None:
        file.unlink(missing_ok=True)  # installed: the download is not needed any more
    return result


@dataclass
class _Made:
    direction: str
    files: dict[str | None, Path]  # twin (None: fp32) -> file in the staging folder
    lines: list[str] = field(default_factory=list)


def _convert(file: Path, staging: Path, src: _Source, direction: str | None, fp16: bool,
             int8: bool, on_detected: Callable[[str], None] | None) -> _Made:
    from cyclegan_cli.export import add_int8, export_reference

    origin = {"licence": src.licence, "published_by": src.published_by}
    if src.url:
        origin["url"] = src.url
    exported = export_reference(file, direction or src.direction, staging / f"m{SUFFIX}",
                                domain_from=src.domains[0], domain_to=src.domains[1],
                                fp16=fp16, source=src.url or str(file.resolve()),
                                origin=origin, on_detected=on_detected)
    if int8:
        exported = add_int8(exported)
    made = _Made(exported.direction, {None: exported.path})
    for twin, path in zip(TWINS, (exported.fp16_path, exported.int8_path), strict=True):
        if path is not None:
            made.files[twin] = path
    made.lines.append(f"export parity vs torch: max abs diff {exported.max_abs_diff:.2e}")
    if exported.int8_report is not None:
        made.lines.append(f"int8: {exported.int8_report.describe()}")
    made.lines += [f"warning: {w}" for w in exported.warnings]
    return made


def _check_onnx(file: Path, staging: Path) -> _Made:
    """A downloaded ONNX file, once it proves to be a cyclegan-cli model (its metadata says
    the direction and precision)."""
    from cyclegan_cli.inference.catalog import read_entry

    entry = read_entry(file)
    if entry.problem:
        raise CganError(f"{file.name} is not a usable cyclegan-cli model: {entry.problem}")
    copy = staging / f"m{SUFFIX}"
    shutil.copyfile(file, copy)
    twin = None if entry.precision == "fp32" else entry.precision
    return _Made(entry.direction, {twin: copy},
                 [f"{entry.direction}: {entry.domain_from} → {entry.domain_to}, "
                  f"{entry.architecture}, {entry.precision}"])


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
