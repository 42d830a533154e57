# ruff: noqa: I001  (it imports 0.1.0's module layout, which no longer exists)
"""Makes tests/data/run-0.1.0/: a tiny training run written by cyclegan-cli 0.1.0 before the
model-family refactor (run at commit 0d191a8), and what that code did when it resumed it.

    python tests/data/make_run_0_1_0.py     # from the repository root, at that commit

- ``data/trainA``, ``data/trainB``: the 8 + 8 training crops (32 px).
- ``run/``: config.json, losses.csv and checkpoints/latest.pt after 5 steps (mid-epoch).
- ``expected.pt``: that code's weights after resuming to step 8, the losses it logged for
  steps 6-8, and a rounding fingerprint: the run's G_AB applied to a fixed input on the
  machine that made this (equal bits elsewhere mean the same convolution kernels, so the
  resumed weights must then be equal to the bit).
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import torch
from rich.console import Console

from cyclegan_cli.data.demo import make_demo_dataset
from cyclegan_cli.training.checkpoint import load_checkpoint
from cyclegan_cli.training.loop import train
from cyclegan_cli.training.restore import load_generator

OUT = Path(__file__).resolve().parent / "run-0.1.0"
CONFIG = dict(netG="resnet_6blocks", ngf=4, ndf=4, load_size=36, crop_size=32, n_epochs=1,
              n_epochs_decay=1, log_every=1, save_every=1, pool_size=4, seed=3,
              num_workers=0, device="cpu", name="run")


def fingerprint_input() -> torch.Tensor:
    return torch.linspace(-1, 1, 3 * 32 * 32).reshape(1, 3, 32, 32)


def main() -> None:
    from cyclegan_cli.config import TrainConfig

    torch.set_num_threads(1)
    shutil.rmtree(OUT, ignore_errors=True)
    data = make_demo_dataset(OUT / "data-full", size=32, n_train=8, n_test=1)
    for split in ("trainA", "trainB"):
        shutil.copytree(data / split, OUT / "data" / split)
    shutil.rmtree(OUT / "data-full")
    quiet = Console(file=open(os.devnull, "w"))  # noqa: SIM115
    cfg = TrainConfig(dir_a=str(OUT / "data" / "trainA"), dir_b=str(OUT / "data" / "trainB"),
                      runs_dir=str(OUT / "work"), max_steps=5, **CONFIG)
    train(cfg, console=quiet, quiet=True)
    shutil.copytree(OUT / "work" / "run", OUT / "run", ignore=shutil.ignore_patterns("samples"))
    train(resume=OUT / "work" / "run", overrides={"max_steps": 8}, console=quiet, quiet=True)
    resumed = load_checkpoint(OUT / "work" / "run" / "checkpoints" / "latest.pt")
    with open(OUT / "work" / "run" / "losses.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["step"]) > 5]
    net, _ = load_generator(OUT / "run")
    with torch.no_grad():
        print_ = net(fingerprint_input())
    torch.save({"nets": resumed["trainer"]["nets"], "losses": rows, "fingerprint": print_,
                "global_step": resumed["trainer"]["global_step"]}, OUT / "expected.pt")
    shutil.rmtree(OUT / "work")
    # the saved paths are this machine's: the test points them at its own copy of data/
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
