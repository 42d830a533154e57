"""The generic trainer: one model family (:mod:`~cyclegan_cli.training.families`) plus what every
family shares: mixed precision, the compile fall-back, step counters and loss bookkeeping, and
the complete state a checkpoint needs."""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from cyclegan_cli.config import TrainConfig
from cyclegan_cli.training.amp import Amp
from cyclegan_cli.training.distributed import Dist, all_true, mean_over_ranks
from cyclegan_cli.training.families import Family, build_family
from cyclegan_cli.training.speed import SpeedPlan, resolve_speed


class Trainer:
    """Trains ``cfg.model``'s family on ``device`` in ``precision`` with the ``speed`` levers
    (default: those :func:`resolve_speed` picks for the device)."""

    def __init__(self, cfg: TrainConfig, device: torch.device, precision: str = "fp32",
                 speed: SpeedPlan | None = None, dist: Dist | None = None) -> None:
        self.cfg = cfg
        self.dist = dist
        self.device = device
        self.precision = precision
        self.speed = speed or resolve_speed(cfg, device)
        self.amp = Amp(device, precision)
        self.family: Family = build_family(cfg, device, self.amp, self.speed, dist)
        self._compile_pending = self.speed.compile != "off"
        self.on_warning: Callable[[str], None] = lambda text: warnings.warn(text, stacklevel=2)
        self.epoch = 0  # current epoch (0-based)
        self.step_in_epoch = 0  # batches done in the current epoch
        self.global_step = 0  # batches done in total
        self._loss_sum = torch.zeros(len(self.loss_names), device=device)
        self._loss_count = 0
        self._finite = torch.ones((), dtype=torch.bool, device=device)

    @property
    def model(self) -> nn.Module:
        """Every network of the family, as one module."""
        return self.family.model

    @property
    def loss_names(self) -> list[str]:
        return self.family.loss_names

    def autocast(self) -> contextlib.AbstractContextManager:
        return self.amp.autocast()

    # -- the step ------------------------------------------------------------------------------
    def train_step(self, real_a: Tensor, real_b: Tensor) -> Tensor:
        """One optimisation step of the family on float batches in [-1, 1] on the device.
        Returns the losses as one tensor on the device, ordered as ``self.loss_names`` (no
        host synchronisation)."""
        if self._compile_pending:
            losses = self._first_compiled_step(real_a, real_b)
        else:
            losses = self.family.step(real_a, real_b)
        self._loss_sum += losses
        self._loss_count += 1
        self._finite &= torch.isfinite(losses).all()
        self.step_in_epoch += 1
        self.global_step += 1
        return losses

    def _first_compiled_step(self, real_a: Tensor, real_b: Tensor) -> Tensor:
        """The first step with compiled networks; where compiling fails, the state is put
        back and the step runs eagerly (and so does the rest of the run)."""
        saved = copy.deepcopy({"state": self.state_dict(), "rng": torch.get_rng_state()})
        try:
            losses = self.family.step(real_a, real_b)
        except Exception as exc:  # any compiler or backend failure: fall back to eager
            reason = (str(exc).strip().splitlines() or [""])[0][:200]
            self.on_warning(f"torch.compile ({self.speed.compile}) failed here "
                            f"({type(exc).__name__}: {reason}); training without it")
            self.load_state_dict(saved["state"])
            torch.set_rng_state(saved["rng"])
            self.speed.compile = "off"
            self.family.build_calls()
            torch._dynamo.reset()
            losses = self.family.step(real_a, real_b)
        self._compile_pending = False
        return losses

    # -- bookkeeping -----------------------------------------------------------------------
    def pop_mean_losses(self) -> dict[str, float]:
        """Mean of each loss since the last call (one host synchronisation)."""
        if self._loss_count == 0:
            return {}
        values = mean_over_ranks(self._loss_sum / self._loss_count, self.dist).tolist()
        self._loss_sum.zero_()
        self._loss_count = 0
        return dict(zip(self.loss_names, values, strict=True))

    def losses_finite(self) -> bool:
        """False once any loss since the start (or the last resume) was NaN or infinite."""
        return bool(all_true(self._finite, self.dist).item())

    def end_epoch(self) -> None:
        self.family.end_epoch()
        self.epoch += 1
        self.step_in_epoch = 0

    @property
    def lr(self) -> float:
        return self.family.lr

    @torch.no_grad()
    def sample_row(self, real_a: Tensor, real_b: Tensor) -> list[Tensor]:
        """One row of the sample grid (the family's), in eval mode, as float tensors."""
        m = self.model
        m.eval()
        try:
            with self.autocast():
                row = self.family.sample_row(real_a, real_b)
        finally:
            m.train()
        return [t.float() for t in row]

    def state_dict(self) -> dict[str, Any]:
        return {**self.family.state_dict(), "scaler": self.amp.scaler.state_dict(),
                "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                "global_step": self.global_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.family.load_state_dict(state)
        self.amp.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.step_in_epoch = int(state["step_in_epoch"])
        self.global_step = int(state["global_step"])
