"""``eval.csv``: the rows ``--eval-every`` writes, and the rule that says which one is best.

A row's score is its **median** (rows from before the median column count by their mean), and
only a row above the untouched input (its ``identity_median``, where there is one) can be best:
the same rule picks ``checkpoints/best.pt`` in training and names it in the run report.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from cyclegan_cli.rundir.losslog import complete_text

COLUMNS = ["step", "epoch", "seconds", "metric", "value", "identity", "ssim", "identity_ssim",
           "images", "failed", "median", "identity_median"]


def _usable(row: dict[str, str]) -> bool:
    try:
        int(row["step"])
        score(row), baseline(row)
    except (KeyError, TypeError, ValueError):
        return False
    return True


def read_rows(path: Path) -> list[dict[str, str]]:
    """The complete rows of ``eval.csv`` (none when it does not exist); rows whose step or
    scores do not parse are skipped."""
    if not path.exists():
        return []
    reader = csv.DictReader(io.StringIO(complete_text(path), newline=""))
    return [r for r in reader if _usable(r)]


def score(row: dict[str, str]) -> float:
    """The figure that ranks a row: its median, else its mean."""
    return float(row.get("median") or row["value"])


def baseline(row: dict[str, str]) -> float:
    """The untouched input's median (−inf where the metric has none)."""
    return float(row["identity_median"]) if row.get("identity_median") else -math.inf


def beats_baseline(row: dict[str, str]) -> bool:
    """Whether a row's score is above the untouched input's (a row without one: always)."""
    return score(row) > baseline(row)


def best_row(rows: list[dict[str, str]], metric: str | None = None) -> dict[str, str] | None:
    """The first row with the highest score above its baseline (of ``metric``, else of the
    last row's metric), or None."""
    if not rows:
        return None
    metric = metric or rows[-1].get("metric")
    best: dict[str, str] | None = None
    for row in rows:
        if row.get("metric") == metric and beats_baseline(row) and (
                best is None or score(row) > score(best)):
            best = row
    return best
