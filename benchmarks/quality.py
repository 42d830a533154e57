"""Known-answer quality benchmark: does training recover a mapping we know?

Domain A: random crops of some of scikit-image's sample photographs. Domain B: crops of *other*
photographs changed by a fixed known-answer task (``--task``, from
``cyclegan_cli.data.tasks.TASKS``; default the warm "golden hour" grade), so the folders are
unpaired. Crops of held-out photographs and their true B version form the test split.
The script trains for a fixed budget of steps, scores the A→B generator on the held-out split
every ``--eval-every`` steps (PSNR / SSIM against the truth, beside the identity baseline), then
exports the best checkpoint (both directions) and scores the ONNX files through the inference
core (B→A maps the graded crops back to the originals: the grade is invertible), and writes:

- ``OUT/quality.json``: settings, device, time, the curve and the final figures;
- ``OUT/quality_curve.png``: held-out PSNR over steps and training time;
- ``OUT/sheet-AtoB.png``, ``OUT/sheet-BtoA.png``: input | output | truth, 8 held-out images;
- ``OUT/weights/golden_hour-{AtoB,BtoA}.onnx``: the exported generators.

Presets: ``reference`` = the reference CycleGAN settings (resnet_9blocks ngf 64, 70×70
PatchGAN, 256² crops, batch 1; for a GPU); ``cpu`` = the small ``cgan demo`` model (64² crops).
``--variant`` chooses the recipe and any other training options (default: ``standard``, what
``cgan train`` does; ``reference`` is the reference CycleGAN's math).

    python benchmarks/quality.py --preset cpu --steps 10000 --eval-every 1000 --out bench-quality
    python benchmarks/quality.py --preset reference --steps 20000 --out bench-quality-gpu
    python benchmarks/quality.py --preset reference --steps 5000 --plain --out bench-plain
    python benchmarks/quality.py --task channel_mix --variant reference --out bench-mix

``--suite`` runs every task × ``--variants`` × ``--seeds`` (one process per run, ``--jobs``
at a time, one thread each; runs whose ``quality.json`` exists are kept, so a stopped suite
continues) and writes ``OUT/suite.json`` and the table ``OUT/suite.md``: held-out A→B PSNR of
the best checkpoint per task and variant, mean and median over the crops, each seed and their
average, beside the untouched input (identity baseline).

    python benchmarks/quality.py --suite --steps 2000 --eval-every 250 --jobs 2 --out suite

Variants: ``standard`` (the default recipe), ``reference`` (the reference CycleGAN math),
``residual``, ``residual-noid`` (the reference with residual generators, with and without the
identity loss), or ``NAME:FIELD=VALUE,...`` for any TrainConfig fields (the recipe's fields
not named follow ``recipe``, default standard).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
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

import torch
from PIL import Image, ImageDraw

import cyclegan_cli
from cyclegan_cli.config import QUICK_CPU, TrainConfig
from cyclegan_cli.data.tasks import SUITE, TASKS, make_task_dataset
from cyclegan_cli.evaluation.evaluate import collect_inputs, evaluate
from cyclegan_cli.export import export_run
from cyclegan_cli.inference import load_model
from cyclegan_cli.training.loop import train

VARIANTS: dict[str, dict[str, object]] = {
    "standard": {"recipe": "standard"},
    "reference": {"recipe": "reference"},
    "residual": {"recipe": "reference", "residual": True},
    "residual-noid": {"recipe": "reference", "residual": True, "lambda_identity": 0.0},
}
PRESETS = {
    "reference": dict(crop_size=256, load_size=286, netG="resnet_9blocks", ngf=64, ndf=64,
                      netD="n_layers", n_layers_D=3, batch_size=1),
    "cpu": dict(QUICK_CPU),  # the demo's sizes
}


def config(preset: str, data: Path, out: Path, steps: int, eval_every: int, device: str,
           n_train: int, seed: int, overrides: dict[str, object]) -> TrainConfig:
    p = PRESETS[preset]
    epochs = max(2, math.ceil(steps * int(p["batch_size"]) / n_train))
    values = dict(dir_a=str(data / "trainA"), dir_b=str(data / "trainB"),
                  n_epochs=epochs // 2, n_epochs_decay=epochs - epochs // 2,
                  max_steps=steps, name=f"quality-{preset}", runs_dir=str(out / "runs"),
                  save_every=10_000, log_every=50, device=device, seed=seed, cache=True,
                  num_workers=0, eval_every=eval_every, eval_a=str(data / "testA"),
                  eval_target=str(data / "testB_true"), **p)
    # one constructor call, so the fields a variant leaves out follow its recipe
    return TrainConfig(**(values | overrides)).validate()  # type: ignore[arg-type]


def plot(rows: list[dict[str, str]], path: Path, title: str) -> None:
    """PSNR (model and identity baseline) against steps, with training minutes marked."""
    w, h, margin = 640, 400, 56
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    steps = [int(r["step"]) for r in rows]
    model = [float(r["value"]) for r in rows]
    ident = [float(r["identity"]) for r in rows]
    lo = math.floor(min(model + ident) - 1)
    hi = math.ceil(max(model + ident) + 1)
    x_of = lambda s: margin + (w - 2 * margin) * s / max(steps[-1], 1)  # noqa: E731
    y_of = lambda v: h - margin - (h - 2 * margin) * (v - lo) / max(hi - lo, 1e-9)  # noqa: E731
    d.rectangle([margin, margin, w - margin, h - margin], outline="black")
    for v in range(lo, hi + 1, max(1, (hi - lo) // 8)):
        d.text((8, y_of(v) - 6), f"{v} dB", fill="black")
        d.line([margin, y_of(v), w - margin, y_of(v)], fill=(230, 230, 230))
    for s, r in zip(steps, rows, strict=True):
        d.text((x_of(s) - 12, h - margin + 6), str(s), fill="black")
        d.text((x_of(s) - 12, h - margin + 20), f"{float(r['seconds']) / 60:.0f} min",
               fill="gray")
    d.line([(x_of(s), y_of(v)) for s, v in zip(steps, ident, strict=True)],
           fill=(150, 150, 150), width=2)
    d.line([(x_of(s), y_of(v)) for s, v in zip(steps, model, strict=True)],
           fill=(200, 60, 20), width=3)
    d.text((margin, 12), title, fill="black")
    d.text((margin, 28), "held-out PSNR vs truth: model (orange), input untouched (grey); "
           "x: steps / training time", fill="black")
    img.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--out", default="bench-quality")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n-train", type=int, default=400)
    parser.add_argument("--n-test", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lambda-identity", type=float, default=None,
                        help="override the identity-loss weight (default: the variant's recipe)")
    parser.add_argument("--residual", action="store_true",
                        help="residual generators (predict a change to the input)")
    parser.add_argument("--task", choices=sorted(TASKS), default="golden_hour",
                        help="the known-answer task that makes domain B")
    parser.add_argument("--variant", default="standard",
                        help=f"{', '.join(VARIANTS)} or NAME:FIELD=VALUE,... (TrainConfig)")
    parser.add_argument("--wide", action="store_true",
                        help="train on more photographs (greyscale ones too) and larger crops "
                             "(up to the whole photo), as the shipped models are; same test "
                             "split")
    parser.add_argument("--suite", action="store_true",
                        help="every task x --variants x --seeds; writes suite.json, suite.md")
    parser.add_argument("--variants", nargs="+", default=["reference", "standard"],
                        help="the suite's variants (each as --variant)")
    parser.add_argument("--tasks", default=",".join(SUITE))
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--jobs", type=int, default=1, help="suite runs side by side")
    parser.add_argument("--plain", action="store_true",
                        help="the plain baseline step (fp32, no compile, channels-last, fused "
                             "Adam or fused calls), to compare quality with the default step")
    args = parser.parse_args()
    if args.suite:
        suite(args)
        return

    out = Path(args.out)
    size = int(PRESETS[args.preset]["crop_size"])
    data = out / f"data-{args.task}-{size}{'-wide' if args.wide else ''}"
    if not (data / "README.txt").exists():
        make_task_dataset(data, args.task, size=size, n_train=args.n_train, n_test=args.n_test,
                          seed=0, wide=args.wide)
    overrides: dict[str, object] = dict(variant(args.variant))
    if args.lambda_identity is not None:
        overrides["lambda_identity"] = args.lambda_identity
    if args.residual:
        overrides["residual"] = True
    if args.plain:
        overrides.update(precision="fp32", compile="off", channels_last="off",
                         fused_adam="off", fuse_calls=False)
    cfg = config(args.preset, data, out, args.steps, args.eval_every, args.device,
                 args.n_train, args.seed, overrides)
    if Path(cfg.run_dir).exists():
        sys.exit(f"{cfg.run_dir} exists; choose another --out")
    t0 = time.perf_counter()
    result = train(cfg, quiet=True)
    seconds = time.perf_counter() - t0
    with (result.run_dir / "eval.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    # the best checkpoint by held-out median PSNR (what --eval-every keeps, if any beat the
    # untouched input; else the latest), both directions; B→A is scored too: the task's
    # test crops back to the originals
    best = (result.run_dir / "checkpoints" / "best.pt").exists()
    exported = export_run(result.run_dir, "both", out / "weights", name=args.task,
                          domains=("photo", args.task.replace("_", " ")))
    finals = {}
    for e in exported:
        source, truth = ((data / "testA", data / "testB_true") if e.direction == "AtoB"
                         else (data / "testB_true", data / "testA"))
        report = evaluate(load_model(e.path), collect_inputs([source]), target=truth,
                          sheet=out / f"sheet-{e.direction}.png")
        finals[e.direction] = report
    device = (torch.cuda.get_device_name() if result.device.startswith("cuda")
              else f"{platform.processor() or platform.machine()} CPU, "
                   f"{torch.get_num_threads()} threads")
    report = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(sys.argv), "device": device, "precision": result.precision,
        "torch": torch.__version__, "cyclegan_cli": cyclegan_cli.__version__,
        "preset": args.preset, "task": args.task, "variant": args.variant, "seed": args.seed,
        "wide_data": args.wide,
        "config": {k: getattr(cfg, k) for k in (
            "recipe", "netG", "residual", "colour_branch", "ema", "ngf", "ndf", "n_layers_D",
            "crop_size", "batch_size", "gan_mode", "lambda_A", "lambda_identity", "lr")},
        "steps": result.global_step, "train_seconds": round(seconds, 1),
        "curve": [{"step": int(r["step"]), "seconds": float(r["seconds"]),
                   "psnr": float(r["value"]), "ssim": float(r["ssim"])} for r in rows],
        "best_step": int(max(rows, key=lambda r: float(r.get("median") or r["value"]))["step"])
        if best else None,
        "checkpoint": "best" if best else "latest (no evaluation beat the untouched input)",
        "final": {d: {k: r.summary()[k] for k in ("psnr", "ssim", "identity_psnr",
                                                  "identity_ssim")}
                  for d, r in finals.items()},
        "per_image_psnr": {d: [im.psnr for im in r.images] for d, r in finals.items()},
        "held_out_images": len(finals["AtoB"].images),
        "weights": [str(e.path) for e in exported],
    }
    (out / "quality.json").write_text(json.dumps(report, indent=2))
    plot(rows, out / "quality_curve.png",
         f"{args.preset} preset, {device}, {result.global_step} steps in {seconds / 60:.1f} min")
    for direction, f in report["final"].items():
        print(f"{direction} {report['checkpoint']} checkpoint (step "
              f"{report['best_step'] or result.global_step}): held-out PSNR "
              f"{f['psnr']['mean']:.2f} dB (identity {f['identity_psnr']['mean']:.2f}), SSIM "
              f"{f['ssim']['mean']:.3f} (identity {f['identity_ssim']['mean']:.3f})")
    print(f"{result.global_step} steps in {seconds:.0f} s on {device}; wrote "
          f"{out / 'quality.json'}, {out / 'quality_curve.png'}, {out}/sheet-*.png, "
          f"{out / 'weights'}/")


def variant(spec: str) -> dict[str, object]:
    """TrainConfig overrides of a variant: a name in VARIANTS or ``NAME:FIELD=VALUE,...``."""
    name, _, fields = spec.partition(":")
    if not fields:
        if name not in VARIANTS:
            sys.exit(f"unknown variant {name!r}: use {', '.join(VARIANTS)} or NAME:FIELD=VALUE")
        return VARIANTS[name]
    known = {f.name: f for f in dataclasses.fields(TrainConfig)}
    out: dict[str, object] = {}
    for item in fields.split(","):
        key, _, text = item.partition("=")
        if key not in known:
            sys.exit(f"variant {spec!r}: TrainConfig has no field {key!r}")
        default = getattr(TrainConfig(), key)
        out[key] = (text.lower() in ("1", "true", "on", "yes") if isinstance(default, bool)
                    else type(default)(text) if default is not None else text)
    return out


def suite(args: argparse.Namespace) -> None:
    """Every task x variant x seed as its own run (kept when done), then the table."""
    out = Path(args.out)
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        sys.exit(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    variants = list(args.variants)
    for v in variants:
        variant(v)  # checked before anything runs
    if len({v.partition(":")[0] for v in variants}) != len(variants):
        sys.exit("variants need different names (NAME:FIELD=VALUE,...)")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    runs = [(t, v, s) for s in seeds for v in variants for t in tasks]

    def folder(t: str, v: str, s: int) -> Path:
        return out / "runs" / f"{t}--{v.partition(':')[0]}--s{s}"  # the variant's name

    def one(run: tuple[str, str, int]) -> tuple[tuple[str, str, int], int]:
        t, v, s = run
        where = folder(t, v, s)
        if (where / "quality.json").exists():
            return run, 0
        if where.exists():  # an interrupted run: start it again
            import shutil
            shutil.rmtree(where)
        command = [sys.executable, __file__, "--preset", args.preset, "--steps",
                   str(args.steps), "--eval-every", str(args.eval_every), "--task", t,
                   "--variant", v, "--seed", str(s), "--n-train", str(args.n_train),
                   "--n-test", str(args.n_test), "--device", args.device, "--out", str(where)]
        if args.wide:
            command.append("--wide")
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        where.mkdir(parents=True)
        with (where.parent / f"{where.name}.log").open("w") as log:
            code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                                  env=env).returncode
        print(f"{t} / {v} / seed {s}: {'done' if code == 0 else f'failed ({code})'}",
              flush=True)
        return run, code

    started = time.perf_counter()
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        codes = dict(pool.map(one, runs))
    results = {}
    for (t, v, s), code in codes.items():
        path = folder(t, v, s) / "quality.json"
        if code == 0 and path.exists():
            results[f"{t}|{v}|{s}"] = json.loads(path.read_text())
    table = suite_table(results, tasks, variants, seeds)
    report = {"date": dt.date.today().isoformat(), "command": " ".join(sys.argv),
              "steps": args.steps, "preset": args.preset, "wide_data": args.wide, "tasks": tasks,
              "variants": {v: variant(v) for v in variants}, "seeds": seeds,
              "wall_seconds": round(time.perf_counter() - started, 1),
              "failed": [f"{t}|{v}|{s}" for (t, v, s), c in codes.items() if c],
              "table": table, "runs": results}
    (out / "suite.json").write_text(json.dumps(report, indent=2))
    (out / "suite.md").write_text(table["markdown"])
    print(table["markdown"])
    if report["failed"]:
        sys.exit(f"{len(report['failed'])} run(s) failed: {', '.join(report['failed'])} "
                 f"(logs in {out / 'runs'})")


def suite_table(results: dict[str, dict], tasks: list[str], variants: list[str],
                seeds: list[int]) -> dict[str, object]:
    """Per task and variant: A→B PSNR of the best checkpoint, mean and median over the
    held-out crops, per seed and averaged, and the gain over the untouched input."""
    rows, lines = [], []
    head = ["task", "identity mean / median"] + [f"{v} mean / median (gain)" for v in variants]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    gains: dict[str, dict[str, list[float]]] = {v: {"mean": [], "median": []} for v in variants}
    for t in tasks:
        cells = []
        ident = None
        row: dict[str, object] = {"task": t}
        for v in variants:
            got = [results[f"{t}|{v}|{s}"]["final"]["AtoB"] for s in seeds
                   if f"{t}|{v}|{s}" in results]
            if not got:
                cells.append("—")
                continue
            ident = got[0]["identity_psnr"]
            mean = statistics.fmean(g["psnr"]["mean"] for g in got)
            median = statistics.fmean(g["psnr"]["median"] for g in got)
            per_seed = " / ".join(f"{g['psnr']['mean']:.2f}" for g in got)
            gains[v]["mean"].append(mean - ident["mean"])
            gains[v]["median"].append(median - ident["median"])
            row[v] = {"mean": mean, "median": median, "seeds": len(got),
                      "per_seed_mean": [g["psnr"]["mean"] for g in got]}
            cells.append(f"{mean:.2f} / {median:.2f} ({mean - ident['mean']:+.2f} / "
                         f"{median - ident['median']:+.2f}; seeds {per_seed})")
        row["identity"] = ident
        rows.append(row)
        base = f"{ident['mean']:.2f} / {ident['median']:.2f}" if ident else "—"
        lines.append(f"| {t} | {base} | " + " | ".join(cells) + " |")
    summary = {v: {k: statistics.fmean(x) if x else None for k, x in g.items()}
               for v, g in gains.items()}
    lines.append("| **mean gain over identity** | | " + " | ".join(
        f"{summary[v]['mean']:+.2f} / {summary[v]['median']:+.2f}"
        if summary[v]["mean"] is not None else "—" for v in variants) + " |")
    return {"rows": rows, "mean_gain": summary, "markdown": "\n".join(lines) + "\n"}


if __name__ == "__main__":
    main()
