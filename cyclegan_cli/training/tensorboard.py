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
from cyclegan_cli.errors import CganError
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
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CganError(f"--tensorboard: the tensorboard package does not load ({first})") \
            from exc


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
        # TensorBoard hides the events of steps >= purge_step written before this start
        self.writer = self._open(resume_step + 1 if resume_step else None)
        if not resume_step:
            self._hparams(cfg)

    def _open(self, purge_step: int | None) -> Any:
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=str(self.folder), purge_step=purge_step)

    def _ensure_folder(self, step: int) -> None:
        """Put the folder back when it was deleted while the run trained (the writer appends
        to its file by name: the folder comes first, then a new file with its header)."""
        if self.folder.is_dir():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):  # the old file's pending events: best effort
            self.writer.close()
        self.writer = self._open(None)
        self.warn(f"{self.folder} was deleted while the run trained; events from step {step} "
                  "on go to a new file")

    def _hparams(self, cfg: TrainConfig) -> None:
        from torch.utils.tensorboard.summary import hparams

        metrics = ["eval/median"] if cfg.eval_every else ["loss/cycle_A", "loss/cycle_B"]
        values = {k: hparam_value(v) for k, v in cfg.to_dict().items()}
        for summary in hparams(values, dict.fromkeys(metrics, 0.0)):
            self.writer.file_writer.add_summary(summary)

    def scalars(self, step: int, losses: dict[str, float], lr: float,
                images_per_s: float) -> None:
        self._ensure_folder(step)
        for name, value in losses.items():
            self.writer.add_scalar(f"loss/{name}", value, step)
        self.writer.add_scalar("train/lr", lr, step)
        self.writer.add_scalar("train/images_per_s", images_per_s, step)

    def evaluation(self, step: int, metric: str, mean: float, median: float,
                   identity_median: float | None) -> None:
        self._ensure_folder(step)
        self.writer.add_scalar("eval/median", median, step)
        self.writer.add_scalar(f"eval/{metric}", mean, step)
        if identity_median is not None:
            self.writer.add_scalar("eval/untouched_input_median", identity_median, step)

    def grid(self, step: int, path: Path) -> None:
        self._ensure_folder(step)
        with Image.open(path) as img:
            pixels = np.asarray(img.convert("RGB"))
        self.writer.add_image("samples", pixels, step, dataformats="HWC")

    def flush(self) -> None:
        if self.folder.is_dir():
            self.writer.flush()

    def close(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)  # the last events need their folder
        self.writer.close()
