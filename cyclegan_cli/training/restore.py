"""Rebuilding trained generators from a run directory (for scoring, export and inference)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import nn

from cyclegan_cli.config import TrainConfig
from cyclegan_cli.errors import CheckpointError
from cyclegan_cli.models import build_generator
from cyclegan_cli.training.checkpoint import load_checkpoint
from cyclegan_cli.training.run import RunDir

Direction = Literal["AtoB", "BtoA"]
_NET = {"AtoB": "G_AB", "BtoA": "G_BA"}


def load_generator(run_path: str | Path, direction: Direction = "AtoB",
                   checkpoint: str | Path | None = None,
                   device: torch.device | str = "cpu") -> tuple[nn.Module, TrainConfig]:
    """The generator of ``direction`` from a run's latest (or the given) checkpoint, in eval
    mode, with the run's config."""
    if direction not in _NET:
        raise CheckpointError(f"unknown direction {direction!r}; use AtoB or BtoA")
    run = RunDir(run_path)
    state = load_checkpoint(checkpoint or run.latest, map_location=device)
    return generator_from_state(state, direction, device, where=str(run.path))


def generator_from_state(state: dict, direction: Direction = "AtoB",
                         device: torch.device | str = "cpu", where: str = "checkpoint"
                         ) -> tuple[nn.Module, TrainConfig]:
    """The ``direction`` generator (eval mode) and config of an already loaded checkpoint."""
    if direction not in _NET:
        raise CheckpointError(f"unknown direction {direction!r}; use AtoB or BtoA")
    cfg = TrainConfig.from_dict(state["config"])
    net = build_generator(cfg.netG, ngf=cfg.ngf, norm=cfg.norm, use_dropout=cfg.dropout,
                          init_type=cfg.init_type, init_gain=cfg.init_gain,
                          residual=cfg.residual)
    try:
        net.load_state_dict(state["trainer"]["nets"][_NET[direction]])
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{where}: generator {_NET[direction]} does not match the "
                              f"saved config ({type(exc).__name__})") from exc
    return net.to(device).eval(), cfg
