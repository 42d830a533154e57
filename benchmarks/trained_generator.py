"""Train a full-size generator (resnet_9blocks ngf 64, 70x70 PatchGAN, 256² crops, batch 1:
the reference CycleGAN settings) on the built-in sample data, then measure on it what random
weights cannot show:

- held-out PSNR against the true grade, for the model and for the untouched input;
- int8 (``cgan export --quantize int8``) against fp32: PSNR of the uint8 outputs per size;
- tiled against untiled translation of one large photo (mean / max difference in levels);
- the CPU graph rewrite against the plain graph (max difference in levels; with
  ``--thread-sweep`` also its speed for 1, 2, 4, ... threads).

Meant for the GPU machine (a few minutes there); runs anywhere, slowly.

    python benchmarks/trained_generator.py --steps 2500 --out /tmp/trained
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import cyclegan_cli
from cyclegan_cli.config import TrainConfig
from cyclegan_cli.data.demo import make_demo_dataset
from cyclegan_cli.data.images import list_images, load_rgb
from cyclegan_cli.evaluation.metrics import psnr
from cyclegan_cli.export import export_run
from cyclegan_cli.export.quantize import int8_psnr, photo_crops
from cyclegan_cli.inference import load_model
from cyclegan_cli.training.loop import train


def held_out_psnr(model_file: Path, data: Path) -> tuple[float, float]:
    """(model, identity) mean PSNR over testA → testB_true."""
    t = load_model(model_file, providers=["CPUExecutionProvider"])
    model, ident = [], []
    for src in list_images(data / "testA"):
        a = load_rgb(src)
        truth = load_rgb(data / "testB_true" / src.name)
        model.append(psnr(t.translate_array(a), truth))
        ident.append(psnr(a, truth))
    return float(np.mean(model)), float(np.mean(ident))


def thread_sweep(model_file: Path) -> dict[str, dict[str, float]]:
    """ms per 256² image, plain graph vs CPU rewrite, for 1, 2, 4, ... threads (all CPUs)."""
    from cyclegan_cli.cpu import cpu_count

    x = np.random.default_rng(0).random((1, 3, 256, 256), dtype=np.float32) * 2 - 1
    out: dict[str, dict[str, float]] = {}
    threads, n = [], 1
    while n < cpu_count():
        threads.append(n)
        n *= 2
    for t in [*threads, cpu_count()]:
        row = {}
        for name, rewrite in (("plain", False), ("rewrite", True)):
            m = load_model(model_file, providers=["CPUExecutionProvider"], threads=t,
                           cpu_rewrite=rewrite)
            times = []
            for _ in range(7):
                t0 = time.perf_counter()
                m.run(x)
                times.append(time.perf_counter() - t0)
            row[name] = round(1000 * float(np.median(times[2:])), 1)
        out[str(t)] = row
        print(f"threads {t}: {row}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--out", default="trained-generator")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n-train", type=int, default=400)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--large", type=int, default=1536, help="side of the tiling test image")
    parser.add_argument("--thread-sweep", action="store_true",
                        help="also time the CPU rewrite against the plain graph per thread count")
    args = parser.parse_args()

    out = Path(args.out)
    data = make_demo_dataset(out / "data", size=256, n_train=args.n_train, n_test=10, seed=0)
    epochs = max(2, math.ceil(args.steps / args.n_train))
    cfg = TrainConfig(dir_a=str(data / "trainA"), dir_b=str(data / "trainB"),
                      load_size=286, crop_size=256, netG="resnet_9blocks", ngf=64, ndf=64,
                      batch_size=1, n_epochs=epochs // 2, n_epochs_decay=epochs - epochs // 2,
                      max_steps=args.steps, name="resnet9", runs_dir=str(out / "runs"),
                      save_every=10_000, device=args.device, seed=0, cache=True, num_workers=2,
                      log_every=50)
    t0 = time.perf_counter()
    result = train(cfg, quiet=True)
    train_s = time.perf_counter() - t0
    report: dict[str, object] = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "device": (torch.cuda.get_device_name() if result.device.startswith("cuda")
                   else result.device),
        "precision": result.precision, "steps": result.global_step,
        "train_seconds": round(train_s, 1), "torch": torch.__version__,
        "cyclegan_cli": cyclegan_cli.__version__, "command": "benchmarks/trained_generator.py "
        f"--steps {args.steps} --n-train {args.n_train}",
    }
    print(f"trained {result.global_step} steps in {train_s:.0f} s on {report['device']}",
          flush=True)
    (res,) = export_run(result.run_dir, "AtoB", out / "weights", int8=True)
    report["export_max_abs_diff"] = res.max_abs_diff
    report["int8_psnr_db"] = {
        str(s): round(int8_psnr(res.path, res.int8_path, photo_crops(8, s, seed=12345)), 2)
        for s in args.sizes}
    model_db, ident_db = held_out_psnr(res.path, data)
    report["held_out_psnr_db"] = {"model": round(model_db, 2), "identity": round(ident_db, 2)}

    big = np.asarray(Image.fromarray(photo_crops(1, 512, seed=7)[0]).resize(
        (args.large, args.large), Image.Resampling.BICUBIC))
    core = load_model(res.path, providers=["CPUExecutionProvider"], max_pixels=10**9,
                      cpu_rewrite=True)
    whole = core.translate_array(big)
    tiling = {}
    for tile in (512, 256):
        tiled = core.translate_array(big, tile=tile)
        diff = np.abs(tiled.astype(np.int16) - whole.astype(np.int16))
        tiling[str(tile)] = {"mean_levels": round(float(diff.mean()), 3),
                             "max_levels": int(diff.max()),
                             "psnr_db": round(psnr(tiled, whole), 2)}
    report["tiled_vs_untiled"] = {"image": f"{args.large}x{args.large}", **tiling}
    plain = load_model(res.path, providers=["CPUExecutionProvider"], cpu_rewrite=False,
                       max_pixels=10**9)
    crop = big[:512, :512]
    report["cpu_rewrite_max_levels"] = int(np.abs(
        plain.translate_array(crop).astype(np.int16)
        - core.translate_array(crop).astype(np.int16)).max())
    if args.thread_sweep:
        report["cpu_rewrite_speed_256"] = thread_sweep(res.path)
    text = json.dumps(report, indent=2)
    (out / "report.json").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
