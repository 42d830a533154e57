"""The torch backend: translate straight from a training run directory (no export needed).

torch and the training code are imported inside :func:`load_run` only, so importing this module
(or the rest of ``cyclegan_cli.inference``) never needs torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from cyclegan_cli.errors import ModelError
from cyclegan_cli.inference.metadata import ModelInfo


def run_info(cfg: Any, direction: str, source: str = "") -> ModelInfo:
    """The :class:`ModelInfo` a run's ``TrainConfig`` implies for one direction."""
    from cyclegan_cli.models import generator_size_multiple

    name_a = Path(cfg.dir_a).name if cfg.dir_a else "A"
    name_b = Path(cfg.dir_b).name if cfg.dir_b else "B"
    src, dst = (name_a, name_b) if direction == "AtoB" else (name_b, name_a)
    return ModelInfo(direction=direction, domain_from=src, domain_to=dst,
                     architecture=cfg.netG, size_multiple=generator_size_multiple(cfg.netG),
                     source=source, config={"netG": cfg.netG, "ngf": cfg.ngf, "norm": cfg.norm})


def load_run(run_dir: Path, direction: str = "AtoB", device: str | None = None,
             threads: int | None = None) -> tuple[Any, ModelInfo]:
    """(backend callable, info) for the ``direction`` generator of a run's latest checkpoint."""
    if not run_dir.is_dir():
        raise ModelError(f"run directory not found: {run_dir} (the torch backend expects a "
                         "cyclegan-cli run directory)")
    missing = [p for p in ("config.json", "checkpoints/latest.pt") if not (run_dir / p).is_file()]
    if missing:
        raise ModelError(f"{run_dir} is not a cyclegan-cli run directory (no "
                         f"{' or '.join(missing)})")
    try:
        torch = importlib.import_module("torch")  # lazily: this package must not need torch
    except ImportError as exc:
        raise ModelError("the torch backend needs PyTorch; install it or use an ONNX "
                         "model") from exc
    from cyclegan_cli.training.restore import load_generator

    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    net, cfg = load_generator(run_dir, direction, device=dev)  # type: ignore[arg-type]

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            y = net(torch.from_numpy(np.ascontiguousarray(batch)).to(dev))
        return y.float().cpu().numpy()

    return run, run_info(cfg, direction, str(run_dir))
