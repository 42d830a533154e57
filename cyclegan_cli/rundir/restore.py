"""Rebuilding a run's trained generators from its checkpoint, and running one on numpy
batches (for export, the torch backend of translation and scoring during training).

A checkpoint names the generators its model family exports (``"exports"``: direction ->
network name, written by the training loop from the family). Checkpoints written before model
families existed are CycleGAN's, with :data:`LEGACY_EXPORTS`. torch and the model builders are
imported when a generator is rebuilt, not before.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from cyclegan_cli.config import TrainConfig, generator_options
from cyclegan_cli.errors import CheckpointError
from cyclegan_cli.rundir.checkpoint import load_checkpoint
from cyclegan_cli.rundir.layout import RunDir

LEGACY_EXPORTS = {"AtoB": "G_AB", "BtoA": "G_BA"}  # checkpoints from before model families


def exported_generators(state: dict[str, Any]) -> dict[str, str]:
    """Direction -> network name of the generators a checkpoint's family exports."""
    exports = state.get("exports") or LEGACY_EXPORTS
    return dict(exports)


def load_generator(run_path: str | os.PathLike[str], direction: str = "AtoB",
                   checkpoint: str | os.PathLike[str] | None = None,
                   device: Any = "cpu") -> tuple[Any, TrainConfig]:
    """The generator of ``direction`` from a run's checkpoint (``checkpoint``: ``auto``, the
    default: best.pt when there is one, else latest.pt; ``best``, ``latest`` or a file; see
    :meth:`RunDir.choose_checkpoint`), in eval mode, with the run's config."""
    run = RunDir(run_path)
    state = load_checkpoint(run.choose_checkpoint(checkpoint or "auto"), map_location=device)
    return generator_from_state(state, direction, device, where=str(run.path))


def generator_from_state(state: dict[str, Any], direction: str = "AtoB", device: Any = "cpu",
                         where: str = "checkpoint") -> tuple[Any, TrainConfig]:
    """The ``direction`` generator (eval mode) and config of an already loaded checkpoint."""
    from cyclegan_cli.models import build_generator

    exports = exported_generators(state)
    if direction not in exports:
        raise CheckpointError(f"{where} has no {direction} generator (it exports "
                              f"{', '.join(exports) or 'none'})")
    cfg = TrainConfig.from_dict(state["config"])
    net = build_generator(cfg.netG, **generator_options(cfg))
    name = exports[direction]
    try:
        net.load_state_dict(state["trainer"]["nets"][name])
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{where}: generator {name} does not match the saved config "
                              f"({type(exc).__name__})") from exc
    return net.to(device).eval(), cfg


def torch_runner(net: Any, device: Any) -> Callable[[np.ndarray], np.ndarray]:
    """``net`` as a numpy function (NCHW float32 in [-1, 1] -> same), without gradients: the
    backend the inference core's Translator calls."""
    import torch

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            y = net(torch.from_numpy(np.ascontiguousarray(batch)).to(device))
        return y.float().cpu().numpy()

    return run
