"""The model-family interface: what one kind of model (CycleGAN, pix2pix, CUT) owns,
and the only way the training loop, checkpoints, evaluation, resume, DDP, the speed plan and
export reach it.

A family owns its networks, optimisers, schedulers, its training step and losses, the sample
row it shows, its checkpoint state, and which generators it exports. The generic
:class:`~cyclegan_cli.training.trainer.Trainer` adds what every family shares: mixed
precision, the compile fall-back, step counters and loss bookkeeping.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LRScheduler

from cyclegan_cli.config import TrainConfig
from cyclegan_cli.training.amp import Amp
from cyclegan_cli.training.distributed import Dist
from cyclegan_cli.training.speed import SpeedPlan


class Family(ABC):
    """One model family, built from a config for a device.

    Class attributes: ``name`` (the ``--model`` value) and ``exports`` (direction -> name of
    the generator network that ``cgan export`` writes for it; the training loop records it in
    every checkpoint, where export and the torch backend read it). An instance may export
    others (CycleGAN with ``--ema`` exports its averaged generators).
    """

    name: ClassVar[str]
    exports: dict[str, str]  # (class default; an instance may set its own)
    # what :meth:`sample_row` returns, left to right (the caption of the grids in report.html)
    sample_columns: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: TrainConfig, device: torch.device, amp: Amp, speed: SpeedPlan,
                 dist: Dist | None = None) -> None:
        self.cfg, self.device, self.amp, self.speed, self.dist = cfg, device, amp, speed, dist
        self.model: nn.Module = self.build_networks()
        self.model.to(device)
        if speed.channels_last:
            self.model.to(memory_format=torch.channels_last)

    @classmethod
    def directions(cls, cfg: TrainConfig) -> list[str]:
        """The directions a run of this config exports (known before it is built)."""
        return list(cls.exports)

    # -- what a family defines --------------------------------------------------------------
    @abstractmethod
    def build_networks(self) -> nn.Module:
        """Every network of the family as one module (children named as in checkpoints)."""

    @property
    @abstractmethod
    def loss_names(self) -> list[str]:
        """Names of the losses :meth:`step` returns, in its order."""

    @abstractmethod
    def build_calls(self) -> None:
        """(Re)build what :meth:`step` calls: the networks as ``self.speed`` says (compiled or
        not) and, under torchrun, wrapped for DistributedDataParallel."""

    @abstractmethod
    def step(self, real_a: Tensor, real_b: Tensor) -> Tensor:
        """One optimisation step on a batch of each domain (float in [-1, 1] on the device).
        Returns the losses as one tensor on the device, ordered as :attr:`loss_names`."""

    @abstractmethod
    def sample_row(self, real_a: Tensor, real_b: Tensor) -> list[Tensor]:
        """The images of one row of the sample grid for one image of each domain (called in
        eval mode, without gradients, under autocast)."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Networks (under ``"nets"``), optimisers, schedulers and anything else a resume
        needs."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put back what :meth:`state_dict` returned."""

    def end_epoch(self) -> None:
        """Advance the learning-rate schedules by one epoch."""
        for value in self._optimisers().values():
            if isinstance(value, LRScheduler):
                value.step()

    @property
    def lr(self) -> float:
        """The current learning rate (of the first optimiser: the generators')."""
        first = next(v for v in self._optimisers().values()
                     if isinstance(v, torch.optim.Optimizer))
        return float(first.param_groups[0]["lr"])

    # -- shared defaults ----------------------------------------------------------------------
    def set_lr_factor(self, factor: float) -> None:
        """Every optimiser's rate = its initial rate × ``factor`` (a schedule fitted into
        ``--max-steps`` sets it before each step; see :func:`~cyclegan_cli.training.schedule.
        fitted_lr_factor`)."""
        for opt in self._optimisers().values():
            if isinstance(opt, torch.optim.Optimizer):
                for group in opt.param_groups:
                    group["lr"] = group.get("initial_lr", self.cfg.lr) * factor

    def _optimisers(self) -> dict[str, Any]:
        """The optimisers and learning-rate schedules among the family's attributes."""
        return {name: value for name, value in vars(self).items()
                if isinstance(value, (torch.optim.Optimizer, LRScheduler))}

    def optimiser_states(self) -> dict[str, Any]:
        """The state of every optimiser and learning-rate schedule, by attribute name (part
        of :meth:`state_dict`)."""
        return {name: value.state_dict() for name, value in self._optimisers().items()}

    def load_optimiser_states(self, state: dict[str, Any]) -> None:
        """Put back :meth:`optimiser_states`."""
        for name, value in self._optimisers().items():
            value.load_state_dict(state[name])

    def rank_state(self) -> dict[str, Any]:
        """What each rank of a distributed run keeps of its own besides its random state
        (saved for every rank but 0, whose state is the family's)."""
        return {}

    def load_rank_state(self, state: dict[str, Any]) -> None:  # noqa: B027 (optional)
        """Put back :meth:`rank_state`."""

    def generators(self) -> dict[str, nn.Module]:
        """The exported generators by direction."""
        return {direction: getattr(self.model, net) for direction, net in self.exports.items()}

    def net_states(self) -> dict[str, dict[str, Tensor]]:
        """Every network's weights, by name (a checkpoint's ``"nets"``)."""
        return {name: net.state_dict() for name, net in self.model.named_children()}

    def load_net_states(self, nets: dict[str, dict[str, Tensor]]) -> None:
        for name, sd in nets.items():
            getattr(self.model, name).load_state_dict(sd)
