"""``cgan train --tensorboard``: TensorBoard event files in ``runs/NAME/tensorboard/`` —
the losses, learning rate and images/s at every logged step, the held-out scores, the sample
grids and the run's hyper-parameters (the HParams tab). Needs the ``tensorboard`` package
(``pip install 'cyclegan-cli[tensorboard]'``); nothing else does."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cyclegan_cli.config import TrainConfig
from cyclegan_cli.errors import CganError, first_line
from cyclegan_cli.rundir import RunDir


def check_available() -> None:
    """ModuleNotFoundError naming ``tensorboard`` when it is not installed (the CLI turns it
    into one line with the install command, :mod:`cyclegan_cli.extras`); CganError when it is
    installed but does not load. Every rank checks, so none waits for one that stopped."""
    if importlib.util.find_spec("tensorboard") is None:
        raise ModuleNotFoundError("No module named 'tensorboard'", name="tensorboard")
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except Exception as exc:
        raise CganError(f"--tensorboard: the tensorboard package does not load "
                        f"({first_line(exc)})") from exc


def hparam_value(value: Any) -> bool | int | float | str:
    """A config value as TensorBoard's HParams tab takes it (None and lists as text)."""
    return value if isinstance(value, bool | int | float | str) else str(value)


class TensorBoardLog:
    """One run's event files. On resume, events after the resumed step are dropped (as the
    loss log's rows are), so the curves have no duplicate steps."""

    def __init__(self, run: RunDir, cfg: TrainConfig, resume_step: int = 0,
                 warn: Callable[[str], None] | None = None) -> None:
        check_available()
        self.folder = run.tensorboard
        self.warn = warn or (lambda text: None)
        self.stopped = False  # given up: the log could not be written
        # TensorBoard hides the events of steps >= purge_step written before this start
        self.writer = self._open(resume_step + 1 if resume_step else None)
        if not resume_step:
            self._hparams(cfg)

    def _open(self, purge_step: int | None) -> Any:
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=str(self.folder), purge_step=purge_step)

    def _reopen(self, step: int) -> None:
        """A new writer (and event file) in a folder made again, after the old one was
        deleted while the run trained (said once)."""
        if self.writer is not None:
            with contextlib.suppress(Exception):  # the old file's pending events: best effort
                self.writer.close()
            self.writer = None
            self.warn(f"{self.folder} was deleted while the run trained; events from step "
                      f"{step} on go to a new file")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.writer = self._open(None)

    def _write(self, step: int, write: Callable[[Any], None]) -> None:
        """``write(writer)``, with the folder put back first where it went (the writer appends
        to its file by name), and again where its thread lost the file as it wrote. A log
        that cannot be written after that is given up with a warning: the run goes on."""
        if self.stopped:
            return
        failure: Exception | None = None
        for attempt in range(3):
            try:
                if attempt or self.writer is None or not self.folder.is_dir():
                    self._reopen(step)
                write(self.writer)
                return
            except Exception as exc:  # OSError, or tensorboard's own errors from its thread
                failure = exc
        self.warn(f"TensorBoard events stop at step {step}: {first_line(failure)}")
        self.stopped = True

    def _hparams(self, cfg: TrainConfig) -> None:
        from torch.utils.tensorboard.summary import hparams

        metrics = ["eval/median"] if cfg.eval_every else ["loss/cycle_A", "loss/cycle_B"]
        values = {k: hparam_value(v) for k, v in cfg.to_dict().items()}
        for summary in hparams(values, dict.fromkeys(metrics, 0.0)):
            self.writer.file_writer.add_summary(summary)

    def scalars(self, step: int, losses: dict[str, float], lr: float,
                images_per_s: float) -> None:
        values = {**{f"loss/{k}": v for k, v in losses.items()}, "train/lr": lr,
                  "train/images_per_s": images_per_s}
        self._write(step, lambda w: [w.add_scalar(k, v, step) for k, v in values.items()])

    def evaluation(self, step: int, metric: str, mean: float, median: float,
                   identity_median: float | None) -> None:
        values = {"eval/median": median, f"eval/{metric}": mean}
        if identity_median is not None:
            values["eval/untouched_input_median"] = identity_median
        self._write(step, lambda w: [w.add_scalar(k, v, step) for k, v in values.items()])

    def grid(self, step: int, path: Path) -> None:
        with Image.open(path) as img:
            pixels = np.asarray(img.convert("RGB"))
        self._write(step, lambda w: w.add_image("samples", pixels, step, dataformats="HWC"))

    def flush(self) -> None:
        if self.writer is not None and self.folder.is_dir():
            with contextlib.suppress(Exception):  # a log is never worth the run
                self.writer.flush()

    def close(self) -> None:
        if self.writer is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)  # the last events need their folder
        with contextlib.suppress(Exception):
            self.writer.close()
