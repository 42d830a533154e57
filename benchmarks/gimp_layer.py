"""How the GIMP plug-in's two engines do on one large layer: wall time, how often the progress
bar got a real fraction (tiles done), and the first and last fraction seen.

    python benchmarks/gimp_layer.py [--size 2048] [--model weights/golden_hour-AtoB.onnx]

Runs the plug-in's own code (plugins/gimp/cyclegan/cyclegan.py) outside GIMP, with the
settings `cgan gimp install` would write, one engine after the other on the same photo.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as skdata

from cyclegan_cli.gimp_install import plugin_settings
from cyclegan_cli.shipped import plugins_dir, weights_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--model", type=Path, default=weights_dir() / "golden_hour-AtoB.onnx")
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location(
        "cyclegan_plugin", plugins_dir() / "gimp" / "cyclegan" / "cyclegan.py")
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    settings = plugin_settings()
    photo = np.asarray(Image.fromarray(skdata.astronaut()).resize((args.size, args.size)))
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)]).tobytes()
    model = plugin.Model(args.model, settings)
    print(f"{args.size}x{args.size} layer, {args.model.name}, {platform.processor() or 'CPU'}")
    for engine in ("in-process", "cgan"):
        seen: list[float] = []
        start = time.perf_counter()
        plugin.translate_pixels(rgba, args.size, args.size, model=model, tile=0, engine=engine,
                                settings=settings, report=seen.append)
        took = time.perf_counter() - start
        steps = sorted({f for f in seen if f is not None})
        print(f"{engine:>10}: {took:6.1f} s, {len(steps)} distinct progress fractions "
              f"({steps[0]:.2f} … {steps[-1]:.2f})" if steps else f"{engine}: {took:.1f} s, "
              "no progress fractions")


if __name__ == "__main__":
    main()
