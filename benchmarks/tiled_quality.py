"""Tiled against whole-image translation of one 2000×1500 photo-like image: PSNR and level
differences, with instance-norm statistics at full resolution (the default when they fit)
and from a copy downscaled to 1.5 MP (what larger images get, and what every image got
before).

    python benchmarks/tiled_quality.py --model golden_hour
    python benchmarks/tiled_quality.py --model path/to/resnet9-AtoB.onnx
"""

from __future__ import annotations

import argparse
import json
from unittest import mock

import numpy as np
from PIL import Image

from cyclegan_cli.evaluation.metrics import psnr
from cyclegan_cli.inference import limits
from cyclegan_cli.inference.plan import open_translator


def photo() -> np.ndarray:
    from skimage import data

    parts = [np.asarray(Image.fromarray(x).resize((500, 500))) for x in
             (data.astronaut(), data.chelsea(), data.coffee(), data.astronaut()[:, ::-1])]
    row = np.concatenate(parts, axis=1)
    return np.concatenate([row, row[:, ::-1], np.roll(row, 700, axis=1)])  # 1500×2000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="golden_hour")
    ap.add_argument("--tile", type=int, default=None, help="default: automatic (512)")
    args = ap.parse_args()
    img = photo()
    t = open_translator(args.model)
    t.max_pixels = img.shape[0] * img.shape[1]
    whole = t.translate_array(img)
    t.max_pixels = limits.MAX_PIXELS
    rows = {}
    for name, small in (("full-resolution statistics", False), ("1.5 MP statistics", True)):
        with mock.patch.object(limits, "STATS_MEMORY", 0 if small else limits.STATS_MEMORY):
            tiled = t.translate_array(img, tile=args.tile)
        d = np.abs(tiled.astype(int) - whole)
        rows[name] = {"psnr_db": round(psnr(tiled, whole), 1),
                      "mean_levels": round(float(d.mean()), 3), "max_levels": int(d.max())}
    print(json.dumps({"model": args.model, "image": "2000x1500", "tile": args.tile or 512,
                      **rows}, indent=2))


if __name__ == "__main__":
    main()
