"""Known-answer quality benchmark: does training recover a mapping we know?

Domain A: random crops of some of scikit-image's sample photographs. Domain B: crops of *other*
photographs with a fixed, invertible warm "golden hour" colour grade
(``cyclegan_cli.data.demo.golden_hour``), so the folders are unpaired. Crops of held-out
photographs and their graded ground truth form the test split.
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
``--residual`` makes the generators predict a change to their input (see ``cgan train --help``).

    python benchmarks/quality.py --preset cpu --steps 10000 --eval-every 1000 --out bench-quality
    python benchmarks/quality.py --preset reference --steps 20000 --out bench-quality-gpu
    python benchmarks/quality.py --preset reference --steps 5000 --plain --out bench-plain
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

import cyclegan_cli
from cyclegan_cli.config import TrainConfig
from cyclegan_cli.data.demo import make_demo_dataset
from cyclegan_cli.evaluation.evaluate import collect_inputs, evaluate
from cyclegan_cli.export import export_run
from cyclegan_cli.inference import load_model
from cyclegan_cli.training.loop import train

PRESETS = {
    "reference": dict(size=256, load_size=286, netG="resnet_9blocks", ngf=64, ndf=64,
                      netD="n_layers", n_layers_D=3, batch_size=1),
    "cpu": dict(size=64, load_size=72, netG="resnet_6blocks", ngf=16, ndf=32,
                netD="n_layers", n_layers_D=2, batch_size=4),
}


def config(preset: str, data: Path, out: Path, steps: int, eval_every: int, device: str,
           n_train: int, seed: int, overrides: dict[str, object]) -> TrainConfig:
    p = dict(PRESETS[preset])
    size = int(p.pop("size"))
    epochs = max(2, math.ceil(steps * int(p["batch_size"]) / n_train))
    cfg = TrainConfig(dir_a=str(data / "trainA"), dir_b=str(data / "trainB"), crop_size=size,
                      n_epochs=epochs // 2, n_epochs_decay=epochs - epochs // 2,
                      max_steps=steps, name=f"quality-{preset}", runs_dir=str(out / "runs"),
                      save_every=10_000, log_every=50, device=device, seed=seed, cache=True,
                      num_workers=0, eval_every=eval_every, eval_a=str(data / "testA"),
                      eval_target=str(data / "testB_true"), **p)  # type: ignore[arg-type]
    return dataclasses.replace(cfg, **overrides)


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
                        help="override the identity-loss weight (default: the config's 0.5)")
    parser.add_argument("--residual", action="store_true",
                        help="residual generators (predict a change to the input)")
    parser.add_argument("--plain", action="store_true",
                        help="the plain baseline step (fp32, no compile, channels-last, fused "
                             "Adam or fused calls), to compare quality with the default step")
    args = parser.parse_args()

    out = Path(args.out)
    size = int(PRESETS[args.preset]["size"])
    data = out / f"data-{size}"
    if not (data / "README.txt").exists():
        make_demo_dataset(data, size=size, n_train=args.n_train, n_test=args.n_test, seed=0)
    overrides: dict[str, object] = {}
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
    # the best checkpoint by held-out PSNR (what --eval-every keeps), both directions; the
    # grade is invertible, so B→A is scored too: graded test crops back to the originals
    exported = export_run(result.run_dir, "both", out / "weights", name="golden_hour",
                          checkpoint=result.run_dir / "checkpoints" / "best.pt",
                          domains=("photo", "golden hour"))
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
        "preset": args.preset, "config": {k: getattr(cfg, k) for k in (
            "netG", "residual", "ngf", "ndf", "n_layers_D", "crop_size", "batch_size", "gan_mode",
            "lambda_A", "lambda_identity", "lr")},
        "steps": result.global_step, "train_seconds": round(seconds, 1),
        "curve": [{"step": int(r["step"]), "seconds": float(r["seconds"]),
                   "psnr": float(r["value"]), "ssim": float(r["ssim"])} for r in rows],
        "best_step": int(max(rows, key=lambda r: float(r["value"]))["step"]),
        "final": {d: {k: r.summary()[k] for k in ("psnr", "ssim", "identity_psnr",
                                                  "identity_ssim")}
                  for d, r in finals.items()},
        "held_out_images": len(finals["AtoB"].images),
        "weights": [str(e.path) for e in exported],
    }
    (out / "quality.json").write_text(json.dumps(report, indent=2))
    plot(rows, out / "quality_curve.png",
         f"{args.preset} preset, {device}, {result.global_step} steps in {seconds / 60:.1f} min")
    for direction, f in report["final"].items():
        print(f"{direction} best checkpoint (step {report['best_step']}): held-out PSNR "
              f"{f['psnr']['mean']:.2f} dB (identity {f['identity_psnr']['mean']:.2f}), SSIM "
              f"{f['ssim']['mean']:.3f} (identity {f['identity_ssim']['mean']:.3f})")
    print(f"{result.global_step} steps in {seconds:.0f} s on {device}; wrote "
          f"{out / 'quality.json'}, {out / 'quality_curve.png'}, {out}/sheet-*.png, "
          f"{out / 'weights'}/")


if __name__ == "__main__":
    main()
