"""Exporting the generators of a training run directory to ONNX files with full metadata."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

import cyclegan_cli
from cyclegan_cli.config import TrainConfig, domain_names
from cyclegan_cli.errors import ExportError
from cyclegan_cli.export.onnx_export import ExportResult, export_and_verify
from cyclegan_cli.inference.metadata import ModelInfo
from cyclegan_cli.inference.naming import model_filename
from cyclegan_cli.models import generator_size_multiple
from cyclegan_cli.rundir import RunDir, exported_generators, generator_from_state, load_checkpoint
from cyclegan_cli.userdirs import user_models_dir

Which = Literal["both", "AtoB", "BtoA"]
SUMMARY_KEYS = ("model", "recipe", "netG", "residual", "colour_branch", "upsample", "ema", "ngf",
                "norm", "dropout", "gan_mode", "load_size", "crop_size", "preprocess",
                "lambda_A", "lambda_B", "lambda_identity", "lambda_L1", "lambda_gan", "direction",
                "lambda_nce", "nce_idt", "flip_equivariance", "nce_patches", "nce_temperature",
                "n_epochs", "n_epochs_decay", "batch_size", "seed", "name")


def config_summary(cfg: TrainConfig, state: dict[str, Any]) -> dict[str, Any]:
    """The training settings worth keeping in the model file, plus the training progress."""
    summary = {key: getattr(cfg, key) for key in SUMMARY_KEYS}
    trainer = state.get("trainer", {})
    summary["global_step"] = int(trainer.get("global_step", 0))
    summary["epoch"] = int(trainer.get("epoch", 0))
    return summary


def export_run(run_dir: str | os.PathLike, direction: Which = "both",
               out_dir: str | os.PathLike | None = None, name: str | None = None,
               fp16: bool = False, *, checkpoint: str | os.PathLike | None = None,
               verify: bool = True, int8: bool = False,
               calibration_images: list[np.ndarray] | None = None,
               calibration_size: int = 256,
               domains: tuple[str, str] | None = None) -> list[ExportResult]:
    """Export a run's generators (those its model family exports: both directions for
    CycleGAN) to ``out_dir/<name>-AtoB.onnx`` and/or ``<name>-BtoA.onnx`` (``out_dir``
    defaults to the user models folder, :func:`~cyclegan_cli.userdirs.user_models_dir`).

    ``name`` defaults to the run folder's name; ``checkpoint`` to auto (the run's best.pt,
    else latest.pt: :meth:`RunDir.choose_checkpoint`); ``domains`` (names of domain A and B)
    to :func:`domain_names` of the training folders. With
    ``fp16`` a ``-fp16.onnx`` twin is written next to each file. Every file is checked against
    the torch generator in ONNX Runtime (unless ``verify=False``); a mismatch raises
    :class:`ExportError`. With ``int8`` a statically quantized ``-int8.onnx`` twin is written
    too, calibrated on ``calibration_images`` (default: crops of scikit-image's sample photos
    resized to ``calibration_size``); its PSNR against the fp32 file is in
    ``ExportResult.int8_psnr`` and a value under 30 dB adds a text to
    ``ExportResult.warnings``.
    """
    if direction not in ("both", "AtoB", "BtoA"):
        raise ExportError(f"unknown direction {direction!r}; use both, AtoB or BtoA")
    run = RunDir(run_dir)
    state = load_checkpoint(run.choose_checkpoint(checkpoint or "auto"))
    if checkpoint is not None:
        _check_belongs(run, state, Path(checkpoint))
    stem = name or Path(run.path).resolve().name
    exports = list(exported_generators(state))  # what the run's model family exports
    directions = exports if direction == "both" else [direction]
    if direction != "both" and direction not in exports:
        raise ExportError(f"{run.path} has no {direction} generator; its model exports "
                          f"{', '.join(exports)}")
    results = []
    for which in directions:
        net, cfg = generator_from_state(state, which, where=str(run.path))  # one load for all
        dom_a, dom_b = domains or domain_names(cfg)
        info = ModelInfo(
            direction=which,
            domain_from=dom_a if which == "AtoB" else dom_b,
            domain_to=dom_b if which == "AtoB" else dom_a,
            architecture=cfg.netG,
            size_multiple=generator_size_multiple(cfg.netG),
            version=cyclegan_cli.__version__,
            source=str(Path(run.path).resolve()),
            config=config_summary(cfg, state),
            family=cfg.model,
            directions=",".join(exports),  # one for pix2pix: translate offers no other
        )
        path = Path(out_dir or user_models_dir()) / model_filename(stem, which)
        results.append(export_and_verify(net, info, path, fp16=fp16, verify=verify, int8=int8,
                                         calibration_images=calibration_images,
                                         calibration_size=calibration_size))
    return results


ARCHITECTURE = ("netG", "ngf", "norm", "residual", "colour_branch", "upsample", "dropout")


def _check_belongs(run: RunDir, state: dict[str, Any], checkpoint: Path) -> None:
    """ExportError when a checkpoint given for a run has another generator architecture."""
    if not run.config.is_file() or "config" not in state:
        return
    mine = TrainConfig.load(run.config).to_dict()
    theirs = state["config"]
    differ = [k for k in ARCHITECTURE if k in theirs and theirs[k] != mine.get(k)]
    if differ:
        what = ", ".join(f"{k} {theirs[k]} (the run: {mine.get(k)})" for k in differ)
        raise ExportError(f"{checkpoint} has another generator architecture than {run.path}: "
                          f"{what}; export the run it belongs to")
