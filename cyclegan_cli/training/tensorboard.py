"""``cgan train --tensorboard``: TensorBoard event files in ``runs/NAME/tensorboard/`` —
the losses, learning rate and images/s at every logged step, the held-out scores, the sample
grids and the run's hyper-parameters (the HParams tab). Needs the ``tensorboard`` package
(``pip install 'cyclegan-cli[tensorboard]'``); nothing else does."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cyclegan_cli.config import TrainConfig
from cyclegan_cli.rundir import RunDir


def check_available() -> None:
    """ModuleNotFoundError naming ``tensorboard`` when it is not installed (the CLI turns it
    into one line with the install command, :mod:`cyclegan_cli.extras`)."""
    if importlib.util.find_spec("tensorboard") is None:
        raise ModuleNotFoundError("No module named 'tensorboard'", name="tensorboard")


def hparam_value(value: Any) -> bool | int | float | str:
    """A config value as TensorBoard's HParams tab takes it (None and lists as text)."""
    return value if isinstance(value, bool | int | float | str) else str(value)


class TensorBoardLog:
    """One run's event files. On resume, events after the resumed step are dropped (as the
    loss log's rows are), so the curves have no duplicate steps."""

    def __init__(self, run: RunDir, cfg: TrainConfig, resume_step: int = 0) -> None:
        check_available()
        from torch.utils.tensorboard import SummaryWriter

        # TensorBoard hides the events of steps >= purge_step written before this start
        self.writer = SummaryWriter(log_dir=str(run.tensorboard),
                                    purge_step=resume_step + 1 if resume_step else None)
        if not resume_step:
            self._hparams(cfg)

    def _hparams(self, cfg: TrainConfig) -> None:
        from torch.utils.tensorboard.summary import hparams

        metrics = ["eval/median"] if cfg.eval_every else ["loss/cycle_A", "loss/cycle_B"]
        values = {k: hparam_value(v) for k, v in cfg.to_dict().items()}
        for summary in hparams(values, dict.fromkeys(metrics, 0.0)):
            self.writer.file_writer.add_summary(summary)

    def scalars(self, step: int, losses: dict[str, float], lr: float,
                images_per_s: float) -> None:
        for name, value in losses.items():
            self.writer.add_scalar(f"loss/{name}", value, step)
        self.writer.add_scalar("train/lr", lr, step)
        self.writer.add_scalar("train/images_per_s", images_per_s, step)

    def evaluation(self, step: int, metric: str, mean: float, median: float,
                   identity_median: float | None) -> None:
        self.writer.add_scalar("eval/median", median, step)
        self.writer.add_scalar(f"eval/{metric}", mean, step)
        if identity_median is not None:
            self.writer.add_scalar("eval/untouched_input_median", identity_median, step)

    def grid(self, step: int, path: Path) -> None:
        with Image.open(path) as img:
            pixels = np.asarray(img.convert("RGB"))
        self.writer.add_image("samples", pixels, step, dataformats="HWC")

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
