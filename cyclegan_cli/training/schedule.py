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


def build_scheduler(optimizer: Optimizer, cfg: TrainConfig) -> LambdaLR:
    """A LambdaLR stepped once per epoch that applies :func:`lr_factor`."""
    return LambdaLR(optimizer, lambda epoch: lr_factor(cfg, epoch))
