"""The run directory: saved config, per-step loss CSV, sample grids and checkpoint paths."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cyclegan_cli.atomic import atomic_open, atomic_write_text
from cyclegan_cli.config import TrainConfig

CONFIG_FILE = "config.json"
LOSS_FILE = "losses.csv"


class RunDir:
    """Paths and files of one run: ``config.json``, ``losses.csv``, ``samples/``,
    ``checkpoints/latest.pt`` and ``checkpoints/epoch_NNNN.pt``."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    @property
    def config(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def losses(self) -> Path:
        return self.path / LOSS_FILE

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def latest(self) -> Path:
        return self.checkpoints / "latest.pt"

    def epoch_checkpoint(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch_{epoch:04d}.pt"

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete the hidden temporary files a killed process left behind (``.NAME.*.tmp``
        from atomic writes); the real files beside them are complete. Returns what went."""
        stale = [p for folder in (self.path, self.checkpoints, self.samples) if folder.is_dir()
                 for p in folder.glob(".*.tmp") if p.is_file()]
        for p in stale:
            p.unlink(missing_ok=True)
        return stale

    def create(self, cfg: TrainConfig) -> None:
        for folder in (self.path, self.samples, self.checkpoints):
            folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config, cfg.to_json())


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
        text = self.path.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):  # the last line was cut short by a kill
            text = text[:text.rfind("\n") + 1]
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


def to_uint8(batch: torch.Tensor) -> np.ndarray:
    """NxCxHxW in [-1, 1] -> NxHxWxC uint8."""
    x = ((batch.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def save_grid(path: Path, rows: list[list[torch.Tensor]]) -> None:
    """Write a PNG grid: each row lists 1xCxHxW images shown left to right (sizes may differ;
    smaller tiles are padded with black)."""
    tiles = [[to_uint8(t)[0] for t in row] for row in rows]
    height = max(t.shape[0] for row in tiles for t in row)
    lines = [np.concatenate([np.pad(t, ((0, height - t.shape[0]), (0, 0), (0, 0)))
                             for t in row], axis=1) for row in tiles]
    width = max(line.shape[1] for line in lines)
    grid = np.concatenate([np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0)))
                           for line in lines], axis=0)
    with atomic_open(path, "wb") as fh:
        Image.fromarray(grid).save(fh, format="PNG")
