"""Evaluating a generator on a folder of images.

* With paired ground truth (``target``: images with the same file name, any extension), PSNR
  and SSIM (and LPIPS with ``standard``) per image and overall, beside the same figures for the
  input itself (the identity baseline), so the gain is visible.
* Without it: cycle reconstruction (A → B → A with the opposite generator) and the distance
  between the colours of translated A and real B (``reference``); the standard FID/KID with
  ``standard`` (:mod:`~cyclegan_cli.evaluation.standard`), and FD/KD on the features of a
  local model with ``features`` (named apart: they are not FID/KID).

Every image is translated through a :class:`~cyclegan_cli.inference.Translator` (or any object
with ``translate_array``), so the ONNX core, the torch backend and the in-training generators
are measured by one code path. Unreadable images are reported by name; the rest still count.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from cyclegan_cli.data.images import list_images, load_rgb
from cyclegan_cli.data.pairs import Pair
from cyclegan_cli.errors import CganError, DataError, ImageReadError
from cyclegan_cli.evaluation.metrics import (
    colour_swd,
    frechet_distance,
    gaussian_stats,
    kernel_distance,
    psnr,
    ssim,
)

BATCH = 8  # images per translator call


class ArrayTranslator(Protocol):
    def translate_array(self, arr: np.ndarray) -> np.ndarray: ...


class Features(Protocol):
    def features(self, images: Sequence[np.ndarray]) -> np.ndarray: ...


class Standard(Protocol):  # evaluation.standard.StandardMetrics
    fid: bool
    kid: bool
    lpips: bool
    standard: bool  # the FID Inception (else another extractor: reported as FD/KD)
    features: str
    kid_subsets: int | None
    kid_subset_size: int | None

    def distances(self, sets: dict[str, Sequence[np.ndarray]], real: Sequence[np.ndarray]
                  ) -> tuple[dict[str, Any], list[str]]: ...

    def lpips_pairs(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[float]: ...


@dataclass
class ImageScore:
    """One input image's figures (``None`` where not measured)."""

    name: str
    psnr: float | None = None
    ssim: float | None = None
    identity_psnr: float | None = None
    identity_ssim: float | None = None
    cycle_psnr: float | None = None
    lpips: float | None = None
    identity_lpips: float | None = None


@dataclass
class EvalReport:
    """Everything ``cgan eval`` reports; :meth:`to_dict` is the ``--json`` output."""

    model: str
    direction: str
    images: list[ImageScore] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    colour_swd: float | None = None  # translated A vs real B
    identity_colour_swd: float | None = None  # input A vs real B
    # the standard FID/KID (torch-fidelity's FID Inception)
    fid: float | None = None
    identity_fid: float | None = None
    kid: float | None = None
    kid_std: float | None = None
    identity_kid: float | None = None
    kid_subsets: int | None = None  # (also of feature_kd, when torch-fidelity computed it)
    kid_subset_size: int | None = None
    # the same arithmetic on other features (a local ONNX model, or another torch-fidelity
    # extractor, named in feature_source): not FID/KID
    feature_source: str | None = None
    feature_fd: float | None = None
    identity_feature_fd: float | None = None
    feature_kd: float | None = None
    feature_kd_std: float | None = None
    identity_feature_kd: float | None = None
    sheet: str | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, float]]:
        """{metric: {"mean": .., "median": ..}} over the images that have it."""
        out: dict[str, dict[str, float]] = {}
        for key in ("psnr", "ssim", "identity_psnr", "identity_ssim", "cycle_psnr", "lpips",
                    "identity_lpips"):
            values = [getattr(s, key) for s in self.images if getattr(s, key) is not None]
            finite = [v for v in values if math.isfinite(v)]
            if values:
                out[key] = {"mean": statistics.fmean(finite) if finite else math.inf,
                            "median": statistics.median(values), "count": len(values)}
        return out

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failed"] = [{"file": f, "reason": r} for f, r in self.failed]
        data["summary"] = self.summary()
        return _finite(data)


def _finite(value: Any) -> Any:
    """JSON has no infinity: identical images (infinite PSNR) are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def collect_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """Image files from files and folders (folders searched recursively), in order."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(list_images(p))
        elif p.is_file():
            files.append(p)
        else:
            raise CganError(f"not found: {p}")
    if not files:
        raise CganError("no input images")
    return files


def _targets(folder: Path) -> dict[str, Path]:
    """Ground-truth files by stem (``a.jpg`` matches ``a.png``)."""
    found: dict[str, Path] = {}
    for f in list_images(folder):
        found.setdefault(f.stem, f)
    return found


def evaluate(forward: ArrayTranslator, inputs: Sequence[Path] | Sequence[Pair], *, model: str = "",
             direction: str = "AtoB", target: Path | None = None,
             backward: ArrayTranslator | None = None, reference: Path | None = None,
             features: Features | None = None, standard: Standard | None = None,
             sheet: Path | None = None, sheet_count: int = 8,
             on_progress: Any = None) -> EvalReport:
    """Translate ``inputs`` with ``forward`` and measure (see the module docstring).
    ``inputs`` may be :class:`~cyclegan_cli.data.pairs.Pair` objects, each its own ground truth.

    ``target``: folder of paired ground truth; ``backward``: the opposite generator (cycle);
    ``reference``: folder of real images of the output domain (colour distance, FID/KID with
    ``standard``, FD/KD with ``features``); ``sheet``: PNG contact sheet of the first
    ``sheet_count`` images.
    """
    report = EvalReport(model=model, direction=direction)
    truth = _targets(target) if target is not None else {}
    loaded: list[tuple[str, np.ndarray, np.ndarray | None]] = []
    for item in inputs:
        try:
            if isinstance(item, Pair):  # (input, ground truth) in one
                src, goal = item.load()
                _same_size(item.a, src, goal, f"pair {item.name}")
                loaded.append((item.name, src, goal))
            else:
                src = load_rgb(item)
                loaded.append((item.name, src, _goal(item, src, truth, target)))
        except (ImageReadError, DataError) as exc:
            where = item.name if isinstance(item, Pair) else str(item)
            report.failed.append((where, getattr(exc, "reason", str(exc))))
            if on_progress:
                on_progress(1)
    rows: list[tuple[str, list[np.ndarray]]] = []
    originals: list[np.ndarray] = []
    outputs: list[np.ndarray] = []
    goals: list[np.ndarray | None] = []
    for i in range(0, len(loaded), BATCH):
        chunk = loaded[i:i + BATCH]
        outs = _translate(forward, [src for _, src, _ in chunk])
        backs = (_translate(backward, outs) if backward is not None
                 else [None] * len(chunk))
        for (name, src, goal), out, back in zip(chunk, outs, backs, strict=True):
            score = ImageScore(name)
            if goal is not None:
                score.psnr, score.ssim = psnr(out, goal), ssim(out, goal)
                score.identity_psnr, score.identity_ssim = psnr(src, goal), ssim(src, goal)
            if back is not None:
                score.cycle_psnr = psnr(back, src)
            report.images.append(score)
            originals.append(src)
            outputs.append(out)
            goals.append(goal)
            if len(rows) < sheet_count:
                rows.append((score.name, [src, out] + ([goal] if goal is not None else [])))
        if on_progress:
            on_progress(len(chunk))
    if standard is not None and standard.lpips:
        _lpips(report, standard, originals, outputs, goals)
    wants_distances = features is not None or (standard is not None
                                               and (standard.fid or standard.kid))
    if reference is not None and outputs:
        real = [load_rgb(f) for f in list_images(reference)]
        report.colour_swd = colour_swd(outputs, real)
        report.identity_colour_swd = colour_swd(originals, real)
        if features is not None:
            _feature_distances(report, features, originals, outputs, real)
        if standard is not None and (standard.fid or standard.kid):
            _standard_distances(report, standard, originals, outputs, real)
    elif wants_distances:
        report.notes.append("FID/KID (and FD/KD) need --reference (real images of the output "
                            "domain)")
    paired = target is not None or any(g is not None for g in goals)
    if backward is None and not paired:
        report.notes.append("no --target and no opposite generator: only distribution "
                            "distances can be measured")
    if sheet is not None and rows:
        from cyclegan_cli.evaluation.sheet import contact_sheet

        columns = ("input", "output", "target") if paired else ("input", "output")
        report.sheet = str(contact_sheet(rows, sheet, columns))
    return report


def _goal(path: Path, src: np.ndarray, truth: dict[str, Path], target: Path | None
          ) -> np.ndarray | None:
    """The ground truth of ``path`` (None without ``target``); ImageReadError when it is
    missing or its size differs from the input's."""
    if target is None:
        return None
    if path.stem not in truth:
        raise ImageReadError(path, f"no ground truth named {path.stem}.* in {target}")
    goal = load_rgb(truth[path.stem])
    _same_size(path, src, goal, f"ground truth {truth[path.stem].name}")
    return goal


def _same_size(path: Path, src: np.ndarray, goal: np.ndarray, what: str) -> None:
    """ImageReadError when an input and its ground truth (``what``) differ in size."""
    if goal.shape != src.shape:
        raise ImageReadError(path, f"{what} is {goal.shape[1]}x{goal.shape[0]}, the input "
                                   f"{src.shape[1]}x{src.shape[0]}")


def _translate(t: ArrayTranslator, images: list[np.ndarray]) -> list[np.ndarray]:
    """One batched call where the translator offers it (same-size images share a call)."""
    batch = getattr(t, "translate_batch", None)
    return list(batch(images)) if batch is not None else [t.translate_array(x) for x in images]


def _feature_distances(report: EvalReport, features: Features, originals: list[np.ndarray],
                       outputs: list[np.ndarray], real: list[np.ndarray]) -> None:
    f_real, f_out, f_in = (features.features(x) for x in (real, outputs, originals))
    if min(len(f_real), len(f_out)) < 2:
        report.notes.append("FD/KD need at least 2 images on each side")
        return
    stats_real = gaussian_stats(f_real)
    report.feature_source = f"local model {Path(getattr(features, 'path', '?')).name}"
    report.feature_fd = frechet_distance(*gaussian_stats(f_out), *stats_real)
    report.identity_feature_fd = frechet_distance(*gaussian_stats(f_in), *stats_real)
    report.feature_kd, report.feature_kd_std = kernel_distance(f_out, f_real)
    report.identity_feature_kd = kernel_distance(f_in, f_real)[0]
    if min(len(f_real), len(f_out)) < f_real.shape[1]:
        report.notes.append(f"FD from {min(len(f_real), len(f_out))} images with "
                            f"{f_real.shape[1]}-d features is biased upwards; compare runs "
                            "only at equal image counts (KD is unbiased)")


def _standard_distances(report: EvalReport, standard: Standard, originals: list[np.ndarray],
                        outputs: list[np.ndarray], real: list[np.ndarray]) -> None:
    found, notes = standard.distances({"model": outputs, "identity": originals}, real)
    model, identity = found["model"], found["identity"]
    if standard.standard:
        report.fid, report.identity_fid = model.fid, identity.fid
        report.kid, report.kid_std, report.identity_kid = model.kid, model.kid_std, identity.kid
    else:  # another extractor's features: named apart
        report.feature_source = f"torch-fidelity {standard.features}"
        report.feature_fd, report.identity_feature_fd = model.fid, identity.fid
        report.feature_kd, report.feature_kd_std = model.kid, model.kid_std
        report.identity_feature_kd = identity.kid
    report.kid_subsets, report.kid_subset_size = standard.kid_subsets, standard.kid_subset_size
    report.notes.extend(notes)


def _lpips(report: EvalReport, standard: Standard, originals: list[np.ndarray],
           outputs: list[np.ndarray], goals: list[np.ndarray | None]) -> None:
    """LPIPS of each output and of each input (the identity baseline) against its ground
    truth, where there is one."""
    have = [i for i, g in enumerate(goals) if g is not None]
    if not have:
        report.notes.append("LPIPS needs --target (paired ground truth)")
        return
    pairs = ([(outputs[i], goals[i]) for i in have]
             + [(originals[i], goals[i]) for i in have])
    scores = standard.lpips_pairs(pairs)  # type: ignore[arg-type]
    for k, i in enumerate(have):
        report.images[i].lpips = scores[k]
        report.images[i].identity_lpips = scores[len(have) + k]
