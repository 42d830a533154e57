"""Peak training memory and step time of each model family at the same model sizes, on the CPU.

Each family trains a few steps in a fresh process of its own (``--steps``, after one warm-up
step), on random images, and reports its peak resident memory (``ru_maxrss``) beside the
resident memory after torch was imported (so the difference is the family's networks,
optimiser states, activations and gradients), and its seconds per step. The default sizes are
the reference ones: ResNet-9 generators with 64 filters, the 70×70 PatchGAN with 64, 256²
crops, batch 1, fp32 (the CUT paper's memory figures are for this setting, on a GPU).

    python benchmarks/family_memory.py --out bench-memory
    python benchmarks/family_memory.py --quick --steps 10   # the cpu preset's sizes
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

FAMILIES = ("cyclegan", "cut", "fastcut", "pix2pix")


def rss_mb() -> float:
    """Current resident memory of this process, MB (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def one(args: argparse.Namespace) -> dict:
    """Train ``args.family`` for a few steps here; return its figures."""
    import torch

    from cyclegan_cli.config import QUICK_CPU, TrainConfig
    from cyclegan_cli.training.speed import SpeedPlan
    from cyclegan_cli.training.trainer import Trainer

    torch.manual_seed(0)
    base = rss_mb()
    sizes = (dict(QUICK_CPU) if args.quick else
             dict(netG="resnet_9blocks", ngf=args.ngf, ndf=args.ngf, netD="basic",
                  batch_size=1, crop_size=args.size))
    side, batch = sizes.pop("crop_size"), sizes["batch_size"]
    sizes.pop("load_size", None)
    cfg = TrainConfig(model=args.family, seed=0, recipe="reference", **sizes)
    trainer = Trainer(cfg, torch.device("cpu"), "fp32", speed=SpeedPlan.plain())
    a, b = (torch.rand(batch, 3, side, side) * 2 - 1 for _ in range(2))
    trainer.train_step(a, b)  # warm-up: allocations, optimiser states
    start = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step(a, b)
    seconds = (time.perf_counter() - start) / args.steps
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    params = sum(p.numel() for p in trainer.family.model.parameters())
    return {"family": args.family, "peak_rss_mb": round(peak, 1),
            "after_import_mb": round(base, 1), "training_mb": round(peak - base, 1),
            "seconds_per_step": round(seconds, 3), "parameters_m": round(params / 1e6, 2),
            "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="the cpu preset's sizes (config.QUICK_CPU) instead")
    parser.add_argument("--out", default="bench-memory")
    parser.add_argument("--family", help=argparse.SUPPRESS)  # one measurement (a child)
    args = parser.parse_args()
    if args.family:
        print(json.dumps(one(args)))
        return
    rows = []
    for family in args.families.split(","):
        done = subprocess.run([sys.executable, __file__, "--family", family, "--size",
                               str(args.size), "--ngf", str(args.ngf), "--steps",
                               str(args.steps), *(["--quick"] if args.quick else [])],
                              capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"{family} failed:\n{done.stderr[-3000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"command": " ".join(sys.argv), "size": args.size, "ngf": args.ngf,
              "quick": args.quick,
              "device": f"{platform.processor() or platform.machine()} CPU", "rows": rows}
    (out / "family_memory.json").write_text(json.dumps(report, indent=2))
    lines = ["| family | parameters (M) | peak RSS MB | after import MB | training MB | "
             "s/step |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['family']} | {r['parameters_m']} | {r['peak_rss_mb']} | "
              f"{r['after_import_mb']} | {r['training_mb']} | {r['seconds_per_step']} |"
              for r in rows]
    (out / "family_memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
