"""Data-loading throughput (images/s per domain) of the training loader, without any training.

Writes N synthetic photos (smooth noise, JPEG, default 640x480) per domain to a temporary
folder, then iterates one epoch of ``make_loader`` with the default preprocessing (resize to
286, random 256 crop, flip) for each worker count, with and without the in-memory cache.
Compare the figures with the training rate the model reaches on your device
(``benchmarks/train_throughput.py``): the loader must be faster, or the device waits.

    python benchmarks/loader_throughput.py --images 64 --workers 0 1
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from cyclegan_cli.data.dataset import UnalignedDataset, make_loader
from cyclegan_cli.data.transforms import Preprocessor


def write_photos(folder: Path, n: int, width: int, height: int, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        small = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
        img.save(folder / f"{i:04d}.jpg", quality=90)


def rate(dataset: UnalignedDataset, workers: int, batch: int) -> float:
    loader = make_loader(dataset, batch_size=batch, seed=0, num_workers=workers)
    list(loader.epoch(0))  # start the workers and warm the page cache
    start = time.perf_counter()
    n = sum(b["A"].shape[0] for b in loader.epoch(1))
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_photos(root / "A", args.images, args.width, args.height, 0)
        write_photos(root / "B", args.images, args.width, args.height, 1)
        pre = Preprocessor("resize_and_crop", 286, 256)
        print(f"{args.images} {args.width}x{args.height} JPEGs per domain, resize 286, crop 256, "
              f"batch {args.batch}, {os.cpu_count()} CPUs")
        for cache in (False, True):
            ds = UnalignedDataset.from_folders(root / "A", root / "B", pre, cache=cache)
            for workers in args.workers:
                print(f"  workers={workers} cache={cache}: "
                      f"{rate(ds, workers, args.batch):.0f} images/s per domain")


if __name__ == "__main__":
    main()
