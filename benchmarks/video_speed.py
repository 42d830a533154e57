"""Video translation speed (frames/s, end to end: decode, translate, encode) and flicker.

Makes a slow pan across a sample photograph at 256p, 720p and 1080p (no download), translates
it with ``cgan translate``'s code path (``translate_video``), plain and with ``--stabilize``,
and measures the flicker metric (motion-compensated change between output frames relative to
the input's change; ``cyclegan_cli.inference.stabilize.flicker``) on the decoded frames.

    python benchmarks/video_speed.py                       # shipped golden_hour model
    python benchmarks/video_speed.py --model FILE.onnx --frames 24 --heights 256 720 1080
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image

from cyclegan_cli.inference import load_model
from cyclegan_cli.inference.resolve import SHIPPED_DIR
from cyclegan_cli.inference.stabilize import Stabilizer, flicker
from cyclegan_cli.inference.video import VideoOptions, translate_video

PAN = 4  # pixels a frame, a multiple of the generator's stride


def pan_frames(height: int, n: int) -> list[np.ndarray]:
    """``n`` frames of a 16:9 view panning across a sample photo scaled to fit."""
    from skimage import data

    width = (height * 16 // 9) // 4 * 4
    photo = Image.fromarray(data.coffee())
    scale = height * 1.25 / photo.height
    big = np.asarray(photo.resize((int(photo.width * scale) + PAN * n + width,
                                   int(photo.height * scale)), Image.Resampling.BICUBIC))
    return [np.ascontiguousarray(big[:height, PAN * i:PAN * i + width]) for i in range(n)]


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> None:
    h, w = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, quality=8,
                                         macro_block_size=1)
    writer.send(None)
    for f in frames:
        writer.send(f)
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(SHIPPED_DIR / "golden_hour-AtoB.onnx"))
    parser.add_argument("--heights", type=int, nargs="+", default=[256, 720, 1080])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    translator = load_model(args.model, threads=args.threads)
    print(f"# {dt.date.today()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, threads={args.threads or 'default'}, model={args.model}")
    print("| height | size | frames | plain fps | --stabilize fps | flicker plain | "
          "flicker --stabilize |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for height in args.heights:
            frames = pan_frames(height, args.frames)
            src = Path(tmp) / f"pan{height}.mp4"
            write_clip(src, frames)
            rates = []
            for stabilize in (None, 8.0):
                dst = Path(tmp) / f"out{height}-{bool(stabilize)}.mp4"
                t0 = time.perf_counter()
                n = translate_video(translator, src, dst, VideoOptions(stabilize=stabilize))
                rates.append(n / (time.perf_counter() - t0))
            # flicker on the frames themselves (no codec noise), in 8-frame batches
            plain = []
            for i in range(0, len(frames), 8):
                plain += translator.translate_batch(frames[i:i + 8])
            stab, stabilizer = [], Stabilizer(translator, 8.0)
            for i in range(0, len(frames), 8):
                stab += stabilizer.translate(frames[i:i + 8])
            f_plain = flicker(frames, plain, (0, PAN))
            f_stab = flicker(frames, stab, (0, PAN))
            h, w = frames[0].shape[:2]
            print(f"| {height}p | {w}×{h} | {n} | {rates[0]:.1f} | {rates[1]:.1f} | "
                  f"{f_plain:.4f} | {f_stab:.4f} |", flush=True)


if __name__ == "__main__":
    main()
