"""The layers of the package, bottom first, and so the import rule: a module may import its
own layer and those below it, never one above (lazy imports inside functions included).
tests/test_architecture.py checks it; docs/architecture.md explains it and docs/architecture.py
draws it. Data only: nothing here runs.
"""

from __future__ import annotations

LAYERS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("base", ("errors", "atomic", "config", "cpu", "shipped", "progress", "text", "layers",
              "download", "userdirs", "__init__"),
     "errors, atomic writes, typed config, CPU threads, shipped files, names, progress, "
     "downloads"),
    ("data", ("data",), "reading images, preprocessing, the training dataset, sample photos"),
    ("models", ("models",), "generators and discriminators, by name; CUT's projector"),
    ("losses", ("losses",), "adversarial, cycle and identity losses, penalty, PatchNCE"),
    ("rundir", ("rundir",), "a run's files: layout, loss log, checkpoints, its generators"),
    ("inference", ("inference",), "the torch-free core: model files, translation, video"),
    ("evaluation", ("evaluation",), "PSNR/SSIM, cycle, colour and FID/KID scores, sheets"),
    ("training", ("training",), "model families, the generic trainer, the loop, DDP"),
    ("export", ("export",), "ONNX files from runs and reference checkpoints, int8"),
    ("apps", ("cli", "extras", "gimp_install", "demo", "pull", "__main__"),
     "the cgan command, install facts, the GIMP installer, the demo, pulling models"),
)

# Finer rules inside a layer: (package, may not import)
INSIDE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("training.families", ("training.trainer", "training.loop", "training.evaluator")),
)

TORCH_FREE = ("base", "rundir", "inference", "evaluation")  # importable without torch
TORCH_BACKEND = "inference.torch_backend"  # the one inference module that may load torch


def layer_of(module: str) -> int:
    """The layer index of ``cyclegan_cli.<module>`` (``module`` without the package name)."""
    top = module.split(".")[0]
    for index, (_, members, _) in enumerate(LAYERS):
        if top in members:
            return index
    raise KeyError(f"cyclegan_cli.{module} is in no layer; add it to cyclegan_cli/layers.py")
