"""Where a run's files are: ``config.json``, ``losses.csv``, ``eval.csv``, ``report.html``,
``samples/``, ``tensorboard/`` and ``checkpoints/latest.pt | best.pt | epoch_NNNN.pt``. Every
other module asks :class:`RunDir`."""

from __future__ import annotations

import os
from pathlib import Path

from cyclegan_cli.atomic import atomic_write_text
from cyclegan_cli.errors import CganError

CONFIG_FILE = "config.json"
LOSS_FILE = "losses.csv"
EVAL_FILE = "eval.csv"
REPORT_FILE = "report.html"
TENSORBOARD_DIR = "tensorboard"
CHECKPOINTS = ("latest", "best")  # the named checkpoints (besides the numbered ones)
AUTO = "auto"  # best.pt where --eval-every kept one, else latest.pt
CHECKPOINT_HELP = ("Runs: auto (best.pt where --eval-every kept one, else latest.pt), best, "
                   "latest or a checkpoint file.")


class RunDir:
    """Paths and files of one run directory."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def config(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def losses(self) -> Path:
        return self.path / LOSS_FILE

    @property
    def evals(self) -> Path:
        return self.path / EVAL_FILE

    @property
    def report(self) -> Path:
        return self.path / REPORT_FILE

    @property
    def tensorboard(self) -> Path:
        """TensorBoard's event files (``--tensorboard``)."""
        return self.path / TENSORBOARD_DIR

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    def sample(self, tag: str) -> Path:
        return self.samples / f"{tag}.png"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def latest(self) -> Path:
        return self.checkpoint("latest")

    @property
    def best(self) -> Path:
        return self.checkpoint("best")

    def checkpoint(self, which: str) -> Path:
        """``latest`` or ``best`` (see :data:`CHECKPOINTS`)."""
        if which not in CHECKPOINTS:
            raise ValueError(f"unknown checkpoint {which!r}; use {' or '.join(CHECKPOINTS)}")
        return self.checkpoints / f"{which}.pt"

    def choose_checkpoint(self, which: str | os.PathLike[str] = AUTO) -> Path:
        """The checkpoint ``--checkpoint`` names: ``auto`` (best.pt when there is one, else
        latest.pt), ``best``, ``latest`` or a file. CganError when it does not exist."""
        which = str(which)
        if which == AUTO:
            return self.best if self.best.is_file() else self.latest
        chosen = self.checkpoint(which) if which in CHECKPOINTS else Path(which)
        if not chosen.is_file():
            hint = (f" ({self.best.name} is written by cgan train --eval-every when a score "
                    "beats the untouched input)" if which == "best" else "")
            raise CganError(f"checkpoint not found: {chosen}{hint}")
        return chosen

    def epoch_checkpoint(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch_{epoch:04d}.pt"

    def is_run(self) -> bool:
        """Whether this folder holds a run (its ``config.json``)."""
        return self.config.is_file()

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete the hidden temporary files a killed process left behind (``.NAME.*.tmp``
        from atomic writes); the real files beside them are complete. Returns what went."""
        stale = [p for folder in (self.path, self.checkpoints, self.samples) if folder.is_dir()
                 for p in folder.glob(".*.tmp") if p.is_file()]
        for p in stale:
            p.unlink(missing_ok=True)
        return stale

    def create(self, config_json: str) -> None:
        """Make the folders and (re)write ``config.json``."""
        for folder in (self.path, self.samples, self.checkpoints):
            folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config, config_json)
