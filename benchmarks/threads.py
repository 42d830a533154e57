"""Training speed by CPU thread count, on an idle machine and on one whose cores are busy.

For each background load (0, 1, ... busy processes, each spinning on one core) and each
``--threads`` value (the given counts and ``auto``), a fresh process trains the demo's sizes
(config.QUICK_CPU, 64² crops) and reports seconds per step: a run of 2 + ``--steps`` steps
less a run of 2, so set-up and warm-up cancel out. ``auto`` is what `cgan train` does by
default: ``$OMP_NUM_THREADS`` is unset for it, so it counts the cores that are idle when it
starts (cyclegan_cli/cpu.py); the script waits ``--settle`` seconds after starting the load.

    python benchmarks/threads.py --out bench-threads

writes ``threads.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
from pathlib import Path
from cyclegan_cli.config import QUICK_CPU, TrainConfig
from cyclegan_cli.training.loop import train
import torch

data, runs, steps, threads = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]


def timed(name, n):
    cfg = TrainConfig(dir_a=str(data / "trainA"), dir_b=str(data / "trainB"), **QUICK_CPU,
                      n_epochs=1, n_epochs_decay=1, max_steps=n, name=name,
                      runs_dir=str(runs), device="cpu", seed=0, cache=True, num_workers=0,
                      threads=0 if threads == "auto" else int(threads))
    start = time.perf_counter()
    train(cfg, quiet=True)
    return time.perf_counter() - start


short = timed("short", 2)  # set-up and the first steps' allocations
long = timed("long", 2 + steps)  # the same plus `steps` steps
print(json.dumps({"threads": threads, "used": torch.get_num_threads(),
                  "seconds_per_step": (long - short) / steps}))
"""


def spin() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", default="1,2", help="counts to try besides auto")
    parser.add_argument("--loads", default="0,1", help="busy background processes")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds between starting the load and measuring")
    parser.add_argument("--out", default="bench-threads")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from cyclegan_cli.data.demo import make_demo_dataset

    data = out / "data"
    if not (data / "README.txt").exists():
        make_demo_dataset(data, size=64, n_train=64, n_test=0)
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    rows = []
    for load in (int(x) for x in args.loads.split(",")):
        busy = [spin() for _ in range(load)]
        try:
            if load:
                time.sleep(args.settle)
            for threads in [*args.threads.split(","), "auto"]:
                runs = out / f"runs-{load}-{threads}"
                child = subprocess.run(
                    [sys.executable, "-c", CHILD, str(data), str(runs), str(args.steps),
                     threads], env=env, capture_output=True, text=True, check=True)
                row = json.loads(child.stdout.strip().splitlines()[-1])
                row |= {"load": load, "loadavg": round(os.getloadavg()[0], 2)}
                rows.append(row)
                print(row, flush=True)
        finally:
            for p in busy:
                p.kill()
                p.wait()
    report = {"date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or
              platform.machine(), "cpus": os.cpu_count(), "steps": args.steps, "rows": rows}
    (out / "threads.json").write_text(json.dumps(report, indent=2))
    print("\n| busy processes | --threads | threads used | s/step |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['load']} | {r['threads']} | {r['used']} | {r['seconds_per_step']:.3f} |")


if __name__ == "__main__":
    main()
