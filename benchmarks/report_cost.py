"""What a refresh of ``report.html`` costs on a long run, and how big the page is.

A synthetic run folder of the size a long reference run leaves: ``--rows`` rows of losses.csv
(200 epochs × 1 000 steps logged every 10 steps = 20 000), ``--evals`` held-out scores and
``--grids`` sample grids of ``--grid-size`` (four rows of six 256² photographs: 1536 × 1024).
The page is built cold (every thumbnail encoded), then warm (thumbnails cached, as during
training).

    python benchmarks/report_cost.py --out /tmp/report-cost
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from pathlib import Path

import numpy as np
from PIL import Image

from cyclegan_cli.rundir import RunDir
from cyclegan_cli.rundir.evallog import COLUMNS
from cyclegan_cli.rundir.report import Thumbnails, build_report, write_report

LOSSES = ["D_A", "D_B", "G_AB", "G_BA", "cycle_A", "cycle_B", "idt_A", "idt_B"]


def photo_grid(size: tuple[int, int]) -> Image.Image:
    """A sample grid of photographs (scikit-image's, shipped with it): 4 rows of 6 tiles."""
    from skimage import data

    photos = [data.chelsea(), data.coffee(), data.astronaut(), data.rocket()]
    tile = (size[0] // 6, size[1] // 4)
    grid = Image.new("RGB", size)
    for r in range(4):
        for c in range(6):
            img = Image.fromarray(photos[(r + c) % len(photos)]).resize(tile)
            grid.paste(img, (c * tile[0], r * tile[1]))
    return grid


def make_run(root: Path, rows: int, evals: int, grids: int, size: tuple[int, int]) -> RunDir:
    run = RunDir(root / "long-run")
    run.create(json.dumps({"model": "cyclegan", "crop_size": 256}) + "\n")
    rng = np.random.default_rng(0)
    with run.losses.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "epoch", "lr", "images_per_s", *LOSSES])
        for i in range(rows):
            w.writerow([10 * (i + 1), 1 + i // 100, 2e-4, 30 + rng.normal(),
                        *(f"{v:.6g}" for v in rng.uniform(0.05, 2, len(LOSSES)))])
    with run.evals.open("w") as fh:
        fh.write(",".join(COLUMNS) + "\n")
        for i in range(evals):
            row = dict.fromkeys(COLUMNS, "")
            row.update(step=str(1000 * (i + 1)), epoch=str(i + 1), metric="psnr",
                       value=f"{22 + i / evals:.4f}", median=f"{22.5 + i / evals:.4f}",
                       identity_median="22.0")
            fh.write(",".join(row[c] for c in COLUMNS) + "\n")
    image = photo_grid(size)
    for i in range(grids):
        image.save(run.sample(f"epoch_{i + 1:04d}"))
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--evals", type=int, default=200)
    parser.add_argument("--grids", type=int, default=200)
    parser.add_argument("--grid-size", type=int, nargs=2, default=(1536, 1024))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    run = make_run(args.out, args.rows, args.evals, args.grids, tuple(args.grid_size))
    thumbs = Thumbnails()
    start = time.perf_counter()
    write_report(run, thumbs=thumbs)
    cold = time.perf_counter() - start
    warm = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        build_report(run, thumbs=thumbs)
        warm.append(time.perf_counter() - start)
    result = {"rows": args.rows, "evals": args.evals, "grids": args.grids,
              "grid_size": list(args.grid_size), "cold_s": round(cold, 3),
              "warm_s_median": round(sorted(warm)[len(warm) // 2], 3),
              "page_kb": round(run.report.stat().st_size / 1024),
              "cpu": platform.processor() or platform.machine()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
