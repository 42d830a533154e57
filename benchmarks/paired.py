"""Paired known-answer benchmark: pix2pix against CycleGAN on the same data, at equal steps.

The data are the demo photographs' crops with a known-answer task (``cyclegan_cli.data.tasks``)
applied to each one under the same file name (``make_task_dataset(paired=True)``), so there are
true pairs; held-out crops of other photographs and their true version form the test split.
Each variant trains for the same number of steps on the same crops; CycleGAN gets the same two
folders and does not use the pairing (it cannot). The translation is scored on the held-out
crops against the truth: PSNR, SSIM, and **sharpness**: the mean gradient magnitude of the
output over the truth's (1.0: as much fine detail as the truth; a blurry guess stays below).

Tasks (``--tasks``): ``golden_hour`` A→B (a colour grade: the answer is exact), and
``soft_focus`` B→A (deblurring: the blur lost detail, so no exact answer exists, and a
regression towards the mean stays soft: where L1 alone falls short and the adversarial term
should help).

Variants (``--variants``):
- ``cyclegan``: the standard recipe, unpaired use of both folders;
- ``pix2pix``: the pix2pix family (conditional GAN + L1 × 100) with the preset's generator;
- ``pix2pix-l1``: the same with ``--lambda-gan 0``: the L1 loss alone (a plain regression);
- ``pix2pix-unet``: the reference pix2pix generator at this size (``unet_64``, 16 filters).

    python benchmarks/paired.py --steps 600 --eval-every 150 --jobs 2 --out bench-paired

Each run is a process of its own (``--jobs`` side by side, one thread each, as CPU-bound torch
processes slow each other otherwise); a run whose ``result.json`` exists is kept, so a stopped
benchmark continues. Writes ``OUT/paired.json``, the table ``OUT/paired.md`` and, per task,
``OUT/sheet-TASK.png``: input | each variant | truth for 6 held-out crops.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

import cyclegan_cli
from cyclegan_cli.config import QUICK_CPU, TrainConfig
from cyclegan_cli.data.images import list_images, load_rgb
from cyclegan_cli.data.tasks import TASKS, make_task_dataset
from cyclegan_cli.evaluation.metrics import psnr, ssim

DIRECTIONS = {"golden_hour": "AtoB", "soft_focus": "BtoA"}  # the way each task is learnt
VARIANTS: dict[str, dict[str, object]] = {
    "cyclegan": {"model": "cyclegan"},
    "pix2pix": {"model": "pix2pix"},
    "pix2pix-l1": {"model": "pix2pix", "lambda_gan": 0.0},
    "pix2pix-unet": {"model": "pix2pix", "netG": "unet_64", "ngf": 16},
}
SHEET_IMAGES = 6


def sharpness(images: list[np.ndarray]) -> float:
    """Mean absolute horizontal + vertical difference of the luminance (0-255 scale)."""
    total = []
    for img in images:
        y = img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        total.append(np.abs(np.diff(y, axis=0)).mean() + np.abs(np.diff(y, axis=1)).mean())
    return float(statistics.fmean(total))


def split(data: Path, direction: str) -> tuple[Path, Path]:
    """(held-out inputs, their truth) for the direction learnt."""
    return ((data / "testA", data / "testB_true") if direction == "AtoB"
            else (data / "testB_true", data / "testA"))


def run_config(task: str, variant: str, data: Path, out: Path, steps: int, eval_every: int,
               n_train: int, seed: int) -> TrainConfig:
    direction = DIRECTIONS.get(task, "AtoB")
    inputs, truth = split(data, direction)
    epochs = max(2, math.ceil(steps * int(QUICK_CPU["batch_size"]) / n_train))
    values = dict(dir_a=str(data / "trainA"), dir_b=str(data / "trainB"), **QUICK_CPU,
                  n_epochs=epochs // 2, n_epochs_decay=epochs - epochs // 2, max_steps=steps,
                  name=variant, runs_dir=str(out), save_every=10_000, log_every=50,
                  device="cpu", seed=seed, cache=True, num_workers=0, eval_every=eval_every,
                  eval_a=str(inputs), eval_target=str(truth))
    overrides = dict(VARIANTS[variant])
    if overrides["model"] == "pix2pix":
        overrides["direction"] = direction
    elif direction == "BtoA":  # CycleGAN's --eval-every scores A→B: scored at its last step
        overrides |= {"eval_every": 0, "eval_a": None, "eval_target": None}
    return TrainConfig(**(values | overrides)).validate()  # type: ignore[arg-type]


def one_run(args: argparse.Namespace) -> None:
    """Train one variant on one task, export its best checkpoint, score it."""
    from cyclegan_cli.export import export_run
    from cyclegan_cli.inference import load_model
    from cyclegan_cli.training.loop import train

    out = Path(args.out) / args.task
    data = Path(args.out) / f"data-{args.task}"
    cfg = run_config(args.task, args.variant, data, out, args.steps, args.eval_every,
                     args.n_train, args.seed)
    direction = DIRECTIONS.get(args.task, "AtoB")
    started = time.perf_counter()
    result = train(cfg, quiet=True)
    seconds = time.perf_counter() - started
    (exported,) = export_run(result.run_dir, direction, out / args.variant / "onnx",
                             name=args.variant)
    translator = load_model(exported.path)
    inputs, truth_dir = split(data, direction)
    files = list_images(inputs)
    sources = [load_rgb(f) for f in files]
    truths = [load_rgb(truth_dir / f.name) for f in files]
    outputs = [translator.translate_array(s) for s in sources]
    outputs_dir = out / args.variant / "held_out"
    outputs_dir.mkdir(parents=True, exist_ok=True)
    for f, o in zip(files[:SHEET_IMAGES], outputs, strict=False):
        Image.fromarray(o).save(outputs_dir / f"{f.stem}.png")
    scores = {
        "psnr": statistics.fmean(psnr(o, t) for o, t in zip(outputs, truths, strict=True)),
        "ssim": statistics.fmean(ssim(o, t) for o, t in zip(outputs, truths, strict=True)),
        "sharpness": sharpness(outputs) / sharpness(truths),
        "identity_psnr": statistics.fmean(psnr(s, t) for s, t in
                                          zip(sources, truths, strict=True)),
        "identity_ssim": statistics.fmean(ssim(s, t) for s, t in
                                          zip(sources, truths, strict=True)),
        "identity_sharpness": sharpness(sources) / sharpness(truths),
    }
    best = (result.run_dir / "checkpoints" / "best.pt").exists()
    record = {"task": args.task, "variant": args.variant, "direction": direction,
              "steps": result.global_step, "train_seconds": round(seconds, 1),
              "images_per_s": round(result.global_step * cfg.batch_size / seconds, 2),
              "checkpoint": "best" if best else "latest", "held_out": len(files),
              "config": {k: getattr(cfg, k) for k in (
                  "model", "recipe", "netG", "ngf", "norm", "dropout", "residual", "gan_mode",
                  "lambda_L1", "lambda_gan", "netD", "n_layers_D", "ndf", "crop_size",
                  "batch_size", "seed")},
              **{k: round(v, 4) for k, v in scores.items()}}
    (out / args.variant / "result.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record))


def sheet(root: Path, task: str, variants: list[str], data: Path) -> Path:
    """input | each variant | truth, one row per held-out crop."""
    inputs, truth = split(data, DIRECTIONS.get(task, "AtoB"))
    rows = []
    for f in list_images(inputs)[:SHEET_IMAGES]:
        cells = [load_rgb(f)]
        cells += [load_rgb(root / task / v / "held_out" / f"{f.stem}.png") for v in variants]
        cells.append(load_rgb(truth / f.name))
        rows.append(np.concatenate(cells, axis=1))
    path = root / f"sheet-{task}.png"
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--eval-every", type=int, default=150)
    parser.add_argument("--n-train", type=int, default=400)
    parser.add_argument("--n-test", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", default=",".join(DIRECTIONS))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--jobs", type=int, default=1, help="runs side by side")
    parser.add_argument("--out", default="bench-paired")
    parser.add_argument("--task", help=argparse.SUPPRESS)  # one run (a child process)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.task:
        one_run(args)
        return
    out = Path(args.out)
    tasks, variants = args.tasks.split(","), args.variants.split(",")
    for name in tasks:
        if name not in TASKS:
            sys.exit(f"unknown task {name}; choose from {', '.join(TASKS)}")
        data = out / f"data-{name}"
        if not (data / "README.txt").exists():
            make_task_dataset(data, name, size=int(QUICK_CPU["crop_size"]),
                              n_train=args.n_train, n_test=args.n_test, seed=0, paired=True)
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variants {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    todo = [(t, v) for t in tasks for v in variants
            if not (out / t / v / "result.json").exists()]
    env = os.environ | ({"OMP_NUM_THREADS": "1"} if args.jobs > 1 else {})

    def launch(job: tuple[str, str]) -> None:
        task, name = job
        command = [sys.executable, __file__, "--task", task, "--variant", name, "--out",
                   str(out), "--steps", str(args.steps), "--eval-every", str(args.eval_every),
                   "--n-train", str(args.n_train), "--seed", str(args.seed)]
        print(f"start {task} {name}", flush=True)
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode:
            print(done.stdout[-2000:], done.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"{task} {name} failed")
        print(f"done {task} {name}: {done.stdout.strip().splitlines()[-1]}", flush=True)

    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        list(pool.map(launch, todo))
    results = {t: {v: json.loads((out / t / v / "result.json").read_text()) for v in variants}
               for t in tasks}
    device = f"{platform.processor() or platform.machine()} CPU"
    summary = {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
               "command": " ".join(sys.argv), "device": device, "jobs": args.jobs,
               "cyclegan_cli": cyclegan_cli.__version__, "steps": args.steps,
               "sheets": [str(sheet(out, t, variants, out / f"data-{t}")) for t in tasks],
               "results": results}
    (out / "paired.json").write_text(json.dumps(summary, indent=2))
    lines = ["| task (direction) | variant | PSNR (untouched) | SSIM (untouched) | sharpness "
             "(untouched) | checkpoint | train s |", "|---|---|---|---|---|---|---|"]
    for t in tasks:
        for v in variants:
            r = results[t][v]
            lines.append(f"| {t} ({r['direction']}) | {v} | {r['psnr']:.2f} "
                         f"({r['identity_psnr']:.2f}) | {r['ssim']:.3f} "
                         f"({r['identity_ssim']:.3f}) | {r['sharpness']:.2f} "
                         f"({r['identity_sharpness']:.2f}) | {r['checkpoint']} | "
                         f"{r['train_seconds']:.0f} |")
    (out / "paired.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
