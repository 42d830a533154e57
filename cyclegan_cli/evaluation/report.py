"""Rich tables for an :class:`~cyclegan_cli.evaluation.evaluate.EvalReport`."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from cyclegan_cli.evaluation.evaluate import EvalReport
from cyclegan_cli.text import literal


def _f(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    return "∞" if math.isinf(value) else f"{value:.{digits}f}"


def print_report(report: EvalReport, console: Console, per_image: bool = False) -> None:
    """Summary table (model vs identity baseline), optional per-image table, notes."""
    s = report.summary()
    if per_image and report.images:
        table = Table(title="per image", show_edge=False)
        lpips = "lpips" in s
        for col in ("image", "PSNR", "SSIM", "PSNR id.", "SSIM id.", "cycle PSNR",
                    *(("LPIPS", "LPIPS id.") if lpips else ())):
            table.add_column(col, justify="left" if col == "image" else "right")
        for i in report.images:
            table.add_row(literal(i.name), _f(i.psnr), _f(i.ssim, 3), _f(i.identity_psnr),
                          _f(i.identity_ssim, 3), _f(i.cycle_psnr),
                          *((_f(i.lpips, 4), _f(i.identity_lpips, 4)) if lpips else ()))
        console.print(table)
    table = Table(title=f"{literal(report.model)} ({report.direction}), "
                        f"{len(report.images)} image(s)")
    for col in ("metric", "model", "identity baseline", "gain"):
        table.add_column(col, justify="left" if col == "metric" else "right")

    def row(name: str, model: float | None, base: float | None, digits: int = 2,
            lower_is_better: bool = False) -> None:
        gain = None if model is None or base is None else (base - model if lower_is_better
                                                           else model - base)
        table.add_row(name, _f(model, digits), _f(base, digits), _f(gain, digits))

    for stat in ("mean", "median"):
        if "psnr" in s:
            row(f"PSNR dB ({stat})", s["psnr"][stat], s["identity_psnr"][stat])
            row(f"SSIM ({stat})", s["ssim"][stat], s["identity_ssim"][stat], 3)
        if "lpips" in s:
            row(f"LPIPS AlexNet ({stat})", s["lpips"][stat], s["identity_lpips"][stat], 4,
                lower_is_better=True)
    if "cycle_psnr" in s:
        row("cycle PSNR dB (mean)", s["cycle_psnr"]["mean"], None)
        row("cycle PSNR dB (median)", s["cycle_psnr"]["median"], None)
    if report.colour_swd is not None:
        row("colour distance to reference", report.colour_swd, report.identity_colour_swd,
            lower_is_better=True)
    subsets = (f", {report.kid_subsets} subsets of {report.kid_subset_size}"
               if report.kid_subsets else "")
    if report.fid is not None:
        row("FID (torch-fidelity)", report.fid, report.identity_fid, lower_is_better=True)
    if report.kid is not None:
        row(f"KID (torch-fidelity{subsets})", report.kid, report.identity_kid, 4,
            lower_is_better=True)
    source = literal(report.feature_source or "other features")
    if report.feature_fd is not None:
        row(f"FD, {source} (not FID)", report.feature_fd, report.identity_feature_fd,
            lower_is_better=True)
    if report.feature_kd is not None:
        row(f"KD, {source} (not KID)", report.feature_kd, report.identity_feature_kd, 4,
            lower_is_better=True)
    console.print(table)
    if report.sheet:
        console.print(f"contact sheet: [bold]{literal(report.sheet)}[/]", highlight=False)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {literal(note)}", highlight=False)
