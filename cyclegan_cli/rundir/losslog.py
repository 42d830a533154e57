"""``losses.csv``: one row per logged step, and a resumed run's log without duplicate steps."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from cyclegan_cli.atomic import atomic_write_text


def _complete(row: dict, columns: list[str]) -> bool:
    """Whether a CSV row has every column, with numbers where numbers belong."""
    if None in row or any(not row.get(c) for c in columns):
        return False
    try:
        int(row["step"])
        for c in columns[1:]:
            float(row[c])
    except ValueError:
        return False
    return True


def complete_text(path: Path) -> str:
    """A CSV log's text without a last line cut short by a kill (one without its newline)."""
    text = path.read_text(encoding="utf-8")
    return text if text.endswith("\n") else text[:text.rfind("\n") + 1]


class LossLog:
    """Appends one CSV row per logged step; on resume, rows after the checkpoint are dropped so
    the log has no duplicate steps."""

    def __init__(self, path: Path, columns: list[str], resume_step: int | None = None) -> None:
        self.path = path
        self.columns = ["step", "epoch", "lr", "images_per_s", *columns]
        if resume_step is not None and path.exists():
            self._truncate_after(resume_step)
        new = not path.exists() or path.stat().st_size == 0
        self._fh = open(path, "a", newline="", encoding="utf-8")  # noqa: SIM115
        self._writer = csv.DictWriter(self._fh, fieldnames=self.columns, extrasaction="ignore")
        if new:
            self._writer.writeheader()
            self._fh.flush()

    def _truncate_after(self, step: int) -> None:
        text = complete_text(self.path)
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        kept = [r for r in rows if _complete(r, self.columns) and int(r["step"]) <= step]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(kept)
        atomic_write_text(self.path, buf.getvalue())

    def write(self, row: dict) -> None:
        self._writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                               for k, v in row.items()})
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
