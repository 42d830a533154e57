"""The run directory: its layout, loss log, checkpoints and the generators inside them.

Below both training and inference, and importable without torch (reading or writing a
checkpoint, or rebuilding a generator, imports it then).
"""

from cyclegan_cli.rundir.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from cyclegan_cli.rundir.layout import CONFIG_FILE, EVAL_FILE, LOSS_FILE, RunDir
from cyclegan_cli.rundir.losslog import LossLog
from cyclegan_cli.rundir.restore import (
    LEGACY_EXPORTS,
    exported_generators,
    generator_from_state,
    load_generator,
    torch_runner,
)

__all__ = [
    "CONFIG_FILE",
    "EVAL_FILE",
    "FORMAT",
    "LEGACY_EXPORTS",
    "LOSS_FILE",
    "LossLog",
    "RunDir",
    "exported_generators",
    "generator_from_state",
    "load_checkpoint",
    "load_generator",
    "save_checkpoint",
    "torch_runner",
]
