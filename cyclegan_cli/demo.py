"""``cgan demo``: make the built-in sample dataset, train a short run on it and score it.

Everything happens locally (the photos ship with scikit-image). The score compares the trained
A→B generator's output on held-out crops with the true colour grade, against doing nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.console import Console

from cyclegan_cli.atomic import atomic_open
from cyclegan_cli.config import QUICK_CPU, TrainConfig
from cyclegan_cli.data.demo import make_demo_dataset
from cyclegan_cli.data.images import list_images, load_rgb
from cyclegan_cli.rundir import RunDir, load_generator
from cyclegan_cli.text import literal
from cyclegan_cli.training.loop import TrainResult, train
from cyclegan_cli.training.prefetch import to_model_range

DEMO_TRAIN_IMAGES = 200
DEMO_SIZE = QUICK_CPU["crop_size"]
DEMO_BATCH = QUICK_CPU["batch_size"]


def demo_config(folder: Path, steps: int, device: str = "cpu", name: str = "golden_hour"
                ) -> TrainConfig:
    """A small, CPU-friendly configuration for the demo data (64-pixel crops).

    It trains with the standard recipe (residual generators that start as the identity and
    learn the change, a colour branch, a light identity loss, EMA weights; config.RECIPES);
    the reference recipe needs far longer on this data (docs/benchmarks.md, "Training
    recipe").
    """
    epochs = max(2, math.ceil(steps * DEMO_BATCH / DEMO_TRAIN_IMAGES))
    return TrainConfig(
        dir_a=str(folder / "data" / "trainA"), dir_b=str(folder / "data" / "trainB"),
        **QUICK_CPU,
        n_epochs=epochs // 2, n_epochs_decay=epochs - epochs // 2, max_steps=steps,
        name=name, runs_dir=str(folder / "runs"), save_every=max(1, epochs // 2),
        log_every=10, device=device, seed=0, cache=True, num_workers=0,
    )


@dataclass
class DemoScore:
    """Errors on the held-out pairs (0-255 scale), for the input untouched and translated.

    ``*_mae`` is the mean absolute pixel error; ``*_colour`` the mean absolute error of each
    image's average colour, which shows whether the grade was learned before the details are.
    """

    identity_mae: float
    model_mae: float
    identity_colour: float
    model_colour: float
    grid: Path


def _errors(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    a, b = a.astype(np.float32), b.astype(np.float32)
    colour = np.abs(a.mean(axis=(1, 2)) - b.mean(axis=(1, 2))).mean()
    return float(np.abs(a - b).mean()), float(colour)


@torch.no_grad()
def score_run(run_dir: Path, data: Path, device: str = "cpu") -> DemoScore:
    """Translate testA with the run's A→B generator and compare with testB_true."""
    net, _ = load_generator(run_dir, "AtoB", device=device)
    files = list_images(data / "testA")
    real = np.stack([load_rgb(f) for f in files])
    true = np.stack([load_rgb(data / "testB_true" / f.name) for f in files])
    x = to_model_range(torch.from_numpy(real).permute(0, 3, 1, 2), torch.device(device))
    fake = ((net(x).clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    grid_path = RunDir(run_dir).sample("test_AtoB")
    rows = [np.concatenate([r, f, t], axis=1) for r, f, t in zip(real, fake, true, strict=True)]
    with atomic_open(grid_path, "wb") as fh:
        Image.fromarray(np.concatenate(rows[:8], axis=0)).save(fh, format="PNG")
    (id_mae, id_colour), (mae, colour) = _errors(real, true), _errors(fake, true)
    return DemoScore(id_mae, mae, id_colour, colour, grid_path)


def _free_name(runs: Path, base: str) -> str:
    name, n = base, 1
    while (runs / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def run_demo(folder: str | Path, *, steps: int = 1200, device: str = "cpu", quiet: bool = False,
             console: Console | None = None) -> tuple[TrainResult, DemoScore]:
    """Make the data (once), train a new demo run, score it and print where everything is."""
    console = console or Console(stderr=True)
    folder = Path(folder)
    data = folder / "data"
    if not (data / "README.txt").exists():
        make_demo_dataset(data, size=DEMO_SIZE, n_train=DEMO_TRAIN_IMAGES, n_test=20, seed=0)
        console.print(f"made the demo dataset in [bold]{literal(data)}[/] (trainA, trainB, testA, "
                      "testB_true)", highlight=False)
    cfg = demo_config(folder, steps, device, _free_name(folder / "runs", "golden_hour"))
    result = train(cfg, console=console, quiet=quiet)
    score = score_run(result.run_dir, data, device=str(result.device))
    console.print(
        f"[green]demo finished[/] in {result.seconds:.0f} s ({result.global_step} steps). On "
        f"{len(list_images(data / 'testA'))} held-out crops, error against the true grade "
        f"(0-255): pixels {score.model_mae:.1f} (untouched {score.identity_mae:.1f}), average "
        f"colour {score.model_colour:.1f} (untouched {score.identity_colour:.1f}). Longer runs "
        "(--steps) get closer.\n"
        f"run: [bold]{literal(result.run_dir)}[/]  samples: "
        f"[bold]{literal(RunDir(result.run_dir).samples)}[/]  "
        f"test grid (input | output | truth): [bold]{literal(score.grid)}[/]", highlight=False,
        soft_wrap=True)
    return result, score
