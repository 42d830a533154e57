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
from cyclegan_cli.config import TrainConfig
from cyclegan_cli.data.demo import make_demo_dataset
from cyclegan_cli.data.images import list_images, load_rgb
from cyclegan_cli.training.loop import TrainResult, train
from cyclegan_cli.training.restore import load_generator
from cyclegan_cli.training.run import RunDir

DEMO_TRAIN_IMAGES = 200
DEMO_SIZE = 64
DEMO_BATCH = 4


def demo_config(folder: Path, steps: int, device: str = "cpu", name: str = "golden_hour"
                ) -> TrainConfig:
    """A small, CPU-friendly configuration for the demo data (64-pixel crops)."""
    epochs = max(2, math.ceil(steps * DEMO_BATCH / DEMO_TRAIN_IMAGES))
    return TrainConfig(
        dir_a=str(folder / "data" / "trainA"), dir_b=str(folder / "data" / "trainB"),
        load_size=72, crop_size=DEMO_SIZE, netG="resnet_6blocks", ngf=16, ndf=32,
        batch_size=DEMO_BATCH,
        n_epochs=epochs // 2, n_epochs_decay=epochs - epochs // 2, max_steps=steps,
        name=name, runs_dir=str(folder / "runs"), save_every=max(1, epochs // 2),
        log_every=10, device=device, seed=0, cache=True, num_workers=0,
    )


@dataclass
class DemoScore:
    """Mean absolute error (0-255 scale) on the held-out pairs: untouched vs. translated."""

    identity_mae: float
    model_mae: float
    grid: Path


@torch.no_grad()
def score_run(run_dir: Path, data: Path, device: str = "cpu") -> DemoScore:
    """Translate testA with the run's A→B generator and compare with testB_true."""
    net, _ = load_generator(run_dir, "AtoB", device=device)
    files = list_images(data / "testA")
    real = np.stack([load_rgb(f) for f in files])
    true = np.stack([load_rgb(data / "testB_true" / f.name) for f in files])
    x = torch.from_numpy(real).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(device)
    fake = ((net(x).clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    grid_path = RunDir(run_dir).samples / "test_AtoB.png"
    rows = [np.concatenate([r, f, t], axis=1) for r, f, t in zip(real, fake, true, strict=True)]
    with atomic_open(grid_path, "wb") as fh:
        Image.fromarray(np.concatenate(rows[:8], axis=0)).save(fh, format="PNG")
    mae = lambda a, b: float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())  # noqa: E731
    return DemoScore(mae(real, true), mae(fake, true), grid_path)


def _free_name(runs: Path, base: str) -> str:
    name, n = base, 1
    while (runs / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def run_demo(folder: str | Path, *, steps: int = 600, device: str = "cpu", quiet: bool = False,
             console: Console | None = None) -> tuple[TrainResult, DemoScore]:
    """Make the data (once), train a new demo run, score it and print where everything is."""
    console = console or Console(stderr=True)
    folder = Path(folder)
    data = folder / "data"
    if not (data / "README.txt").exists():
        make_demo_dataset(data, size=DEMO_SIZE, n_train=DEMO_TRAIN_IMAGES, n_test=20, seed=0)
        console.print(f"made the demo dataset in [bold]{data}[/] (trainA, trainB, testA, "
                      "testB_true)", highlight=False)
    cfg = demo_config(folder, steps, device, _free_name(folder / "runs", "golden_hour"))
    result = train(cfg, console=console, quiet=quiet)
    score = score_run(result.run_dir, data, device=str(result.device))
    console.print(
        f"[green]demo finished[/] in {result.seconds:.0f} s: on {len(list_images(data / 'testA'))}"
        f" held-out crops the A→B output is {score.model_mae:.1f} from the true grade (mean abs "
        f"error, 0-255) versus {score.identity_mae:.1f} untouched.\n"
        f"run: [bold]{result.run_dir}[/]  samples: [bold]{RunDir(result.run_dir).samples}[/]  "
        f"test grid (input | output | truth): [bold]{score.grid}[/]", highlight=False)
    return result, score
