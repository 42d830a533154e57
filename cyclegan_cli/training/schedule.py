"""Learning-rate policies, as a multiplier of the initial rate for each (0-based) epoch."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from cyclegan_cli.config import TrainConfig

LR_POLICIES = ("linear", "step", "cosine", "constant")


def lr_factor(cfg: TrainConfig, epoch: int) -> float:
    """Multiplier of ``cfg.lr`` during ``epoch`` (0-based).

    linear: 1 for the first ``n_epochs``, then falls linearly, reaching 1/(n_epochs_decay + 1)
    in the last epoch and 0 after it (the reference formula); step: x0.1 every
    ``lr_decay_iters`` epochs; cosine: half a cosine from 1 to 0 over all epochs; constant: 1.
    """
    policy = cfg.lr_policy
    if policy == "linear":
        return max(0.0, 1.0 - max(0, epoch + 1 - cfg.n_epochs) / float(cfg.n_epochs_decay + 1))
    if policy == "step":
        return 0.1 ** (epoch // max(1, cfg.lr_decay_iters))
    if policy == "cosine":
        total = max(1, cfg.total_epochs)
        return 0.5 * (1.0 + math.cos(math.pi * min(epoch, total) / total))
    if policy == "constant":
        return 1.0
    raise ValueError(f"unknown lr policy {policy!r}; choose one of {', '.join(LR_POLICIES)}")


def stretch(cfg: TrainConfig, steps_per_epoch: int) -> float:
    """Schedule epochs per real epoch: 1, or more when ``--max-steps`` ends the run before its
    planned epochs and ``lr_fit_steps`` fits the schedule into the steps that run."""
    planned = cfg.total_epochs * steps_per_epoch
    if cfg.lr_fit_steps and cfg.max_steps and cfg.max_steps < planned:
        return planned / cfg.max_steps
    return 1.0


def fitted_lr_factor(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """:func:`lr_factor` for the ``step``-th step (0-based) of a run whose schedule is
    stretched (:func:`stretch`): the policy's epoch is the step's place in the planned
    epochs, so the whole schedule, decay included, fits into ``--max-steps``."""
    return lr_factor(cfg, int(step * stretch(cfg, steps_per_epoch) / steps_per_epoch))


def decay_start(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """The step where a stretched linear schedule starts to decay."""
    return int(cfg.n_epochs * steps_per_epoch / stretch(cfg, steps_per_epoch))


def build_scheduler(optimizer: Optimizer, cfg: TrainConfig) -> LambdaLR:
    """A LambdaLR stepped once per epoch that applies :func:`lr_factor`."""
    return LambdaLR(optimizer, lambda epoch: lr_factor(cfg, epoch))
