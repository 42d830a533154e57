"""The torch backend: translate straight from a training run directory (no export needed).

torch and the training code are imported inside :func:`load_run` only, so importing this module
(or the rest of ``cyclegan_cli.inference``) never needs torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from cyclegan_cli.cpu import resolve_threads
from cyclegan_cli.errors import ModelError
from cyclegan_cli.inference.metadata import DIRECTIONS, ModelInfo, only_direction
from cyclegan_cli.rundir import RunDir


def run_info(cfg: Any, direction: str, source: str = "",
             directions: list[str] | None = None) -> ModelInfo:
    """The :class:`ModelInfo` a run's ``TrainConfig`` implies for one direction (of
    ``directions``, those its checkpoint exports)."""
    from cyclegan_cli.config import domain_names
    from cyclegan_cli.models import generator_size_multiple

    name_a, name_b = domain_names(cfg)  # the names `cgan export` writes into ONNX files
    src, dst = (name_a, name_b) if direction == "AtoB" else (name_b, name_a)
    return ModelInfo(direction=direction, domain_from=src, domain_to=dst,
                     architecture=cfg.netG, size_multiple=generator_size_multiple(cfg.netG),
                     source=source, config={"netG": cfg.netG, "ngf": cfg.ngf, "norm": cfg.norm},
                     family=cfg.model, directions=",".join(directions or DIRECTIONS))


class TorchNormStats:
    """:class:`~cyclegan_cli.inference.norm_stats.NormStats` for a torch generator: forward
    hooks on its ``InstanceNorm2d`` layers record or replace their statistics."""

    def __init__(self, net: Any, device: Any) -> None:
        self.torch = importlib.import_module("torch")
        self.net, self.device = net, device
        self.norms = [m for m in net.modules()
                      if isinstance(m, self.torch.nn.InstanceNorm2d)]
        self.count = len(self.norms)
        self.channels = self.norms[0].num_features if self.norms else 0

    def _run(self, batch: np.ndarray, hook: Any) -> Any:
        handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(self.norms)]
        try:
            with self.torch.inference_mode():
                return self.net(self.torch.from_numpy(np.ascontiguousarray(batch))
                                .to(self.device))
        finally:
            for h in handles:
                h.remove()

    def collect(self, batch: np.ndarray) -> list[np.ndarray]:
        from cyclegan_cli.inference.norm_stats import batch_mean

        stats: list[np.ndarray] = [np.empty(0)] * (2 * self.count)

        def hook(i: int) -> Any:
            def record(module: Any, inputs: Any, output: Any) -> None:
                x = inputs[0].float()
                stats[2 * i] = x.mean((2, 3), keepdim=True).cpu().numpy()
                stats[2 * i + 1] = x.var((2, 3), unbiased=False, keepdim=True).cpu().numpy()
            return record

        self._run(batch, hook)
        return batch_mean(stats)

    def apply(self, batch: np.ndarray, stats: list[np.ndarray]) -> np.ndarray:
        given = [self.torch.from_numpy(s).to(self.device) for s in stats]

        def hook(i: int) -> Any:
            def replace(module: Any, inputs: Any, output: Any) -> Any:
                x = inputs[0]
                mean, var = given[2 * i].to(x.dtype), given[2 * i + 1].to(x.dtype)
                y = (x - mean) / self.torch.sqrt(var + module.eps)
                if module.affine:
                    y = y * module.weight.view(1, -1, 1, 1) + module.bias.view(1, -1, 1, 1)
                return y
            return replace

        return self._run(batch, hook).float().cpu().numpy()


def load_run(run_dir: Path, direction: str | None = None, device: str | None = None,
             threads: int | None = None, checkpoint: str | None = None
             ) -> tuple[Any, ModelInfo, TorchNormStats]:
    """(backend callable, info, norm statistics) for the ``direction`` generator (None: AtoB,
    or a one-direction run's own) of a run's
    checkpoint (``checkpoint``: auto, best, latest or a file; see
    :meth:`~cyclegan_cli.rundir.RunDir.choose_checkpoint`). The info's source names the
    checkpoint file."""
    if not run_dir.is_dir():
        raise ModelError(f"run directory not found: {run_dir} (the torch backend expects a "
                         "cyclegan-cli run directory)")
    run = RunDir(run_dir)
    missing = [p.relative_to(run_dir) for p in (run.config, run.latest) if not p.is_file()]
    if missing and not (checkpoint not in (None, "auto") and run.config.is_file()):
        raise ModelError(f"{run_dir} is not a cyclegan-cli run directory (no "
                         f"{' or '.join(map(str, missing))})")
    chosen = run.choose_checkpoint(checkpoint or "auto")
    try:
        torch = importlib.import_module("torch")  # lazily: this package must not need torch
    except ImportError as exc:
        raise ModelError(f"{run_dir}: translating with a run's checkpoint needs torch, which "
                         "is not installed: pip install 'cyclegan-cli[train]', or use the "
                         "run's exported .onnx (cgan export)") from exc
    from cyclegan_cli.rundir import (
        exported_generators,
        generator_from_state,
        load_checkpoint,
        torch_runner,
    )

    torch.set_num_threads(resolve_threads(threads))
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    state = load_checkpoint(chosen, map_location=dev)
    exports = list(exported_generators(state))
    direction = direction or ("AtoB" if "AtoB" in exports else exports[0])
    if direction not in exports:
        family = state.get("config", {}).get("model", "cyclegan")
        raise ModelError(only_direction(f"run {run_dir}", " and ".join(exports),
                                        f"a one-direction {family} model"))
    net, cfg = generator_from_state(state, direction, dev, where=str(run.path))
    info = run_info(cfg, direction, str(chosen), exports)
    return torch_runner(net, dev), info, TorchNormStats(net, dev)
