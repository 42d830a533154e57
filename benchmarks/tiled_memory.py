"""Peak memory of translating one large image in tiles, through the real command.

For each size, a photo-like PNG (sample photos tiled and resized) is written, then
``cgan translate -m MODEL big.png -o out/`` runs in a fresh process and its peak resident
memory (``ru_maxrss`` of the child) is read. Reported: MB, and bytes a pixel beyond the
smallest size's peak (the slope, which is what grows with the image).

    python benchmarks/tiled_memory.py --sizes 3000 6000 12000 --json tiled_memory.json
    python benchmarks/tiled_memory.py --code /path/to/other/checkout   # compare a version
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def photo(side: int) -> np.ndarray:
    """A side x side RGB image with photo-like content (sample photos, tiled, resized)."""
    from skimage import data

    parts = [np.asarray(Image.fromarray(x).resize((512, 512))) for x in
             (data.astronaut(), data.chelsea(), data.coffee(), data.astronaut()[::-1])]
    block = np.concatenate([np.concatenate(parts[:2], 1), np.concatenate(parts[2:], 1)], 0)
    reps = -(-side // 1024)
    big = np.tile(block, (reps, reps, 1))[:side, :side]
    return np.ascontiguousarray(big)


def measure(model: str, side: int, work: Path, code: Path | None) -> dict[str, float]:
    src = work / f"big_{side}.png"
    if not src.exists():
        Image.fromarray(photo(side)).save(src, compress_level=1)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    script = ("import resource, subprocess, sys, time\n"
              "t = time.perf_counter()\n"
              "rc = subprocess.call(sys.argv[1:])\n"
              "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
              "print(rc, peak, time.perf_counter() - t)\n")
    out = work / f"out_{side}"
    cmd = [sys.executable, "-c", script, sys.executable, "-m", "cyclegan_cli", "translate",
           "-m", model, str(src), "-o", str(out), "--quiet"]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work, check=False)
    rc, peak_kb, seconds = run.stdout.split()
    if rc != "0":
        raise SystemExit(f"translate failed at {side}²: {run.stderr[-500:]}")
    return {"side": side, "megapixels": side * side / 1e6, "peak_mb": int(peak_kb) / 1024,
            "seconds": float(seconds)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="golden_hour")
    ap.add_argument("--sizes", type=int, nargs="+", default=[3000, 6000, 12000])
    ap.add_argument("--code", type=Path, default=None,
                    help="another checkout to measure (its folder goes on PYTHONPATH)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cgan-mem-") as tmp:
        rows = [measure(args.model, side, Path(tmp), args.code) for side in args.sizes]
    first = rows[0]
    for row in rows:
        extra = row["megapixels"] - first["megapixels"]
        row["bytes_per_pixel_over_smallest"] = (
            (row["peak_mb"] - first["peak_mb"]) * 2**20 / (extra * 1e6) if extra else None)
        row["bytes_per_pixel_total"] = row["peak_mb"] * 2**20 / (row["megapixels"] * 1e6)
        print(json.dumps(row))
    report = {"date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or
              platform.machine(), "python": platform.python_version(), "model": args.model,
              "code": str(args.code or ROOT), "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
