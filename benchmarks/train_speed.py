"""Training speed: the full CycleGAN step, plain baseline against our default, side by side.

The step is ``Trainer.train_step``: both generators, both discriminators, GAN + cycle +
identity losses, the history pools and both optimiser steps. Inputs are random batches already
on the device (data loading is measured by benchmarks/loader_throughput.py).

Modes (``--modes``, measured in interleaved rounds, median reported):

- ``plain``: fp32, eager, PyTorch defaults (no cudnn benchmark): the reference way;
- ``default``: what ``cgan train`` does on this device (bf16 autocast, channels-last, fused
  Adam, fused calls and torch.compile on CUDA);
- ``+bf16``, ``+channels_last``, ``+fused_adam``, ``+fuse_calls``, ``+compile``,
  ``+cudagraphs``: the levers added one at a time on top of ``plain`` (cumulative, in that
  order), for the notes table in docs/benchmarks.md.

Reported per mode and batch: images/s (per domain), speed-up over ``plain``, peak device memory,
and model-FLOP utilisation: FLOPs of one step (torch.utils.flop_counter, per image) × images/s
over the device's bf16 dense peak (``--peak-tflops`` for devices not in the table).
``--max-batch`` finds the largest batch that fits for each ``--max-batch-sizes`` side;
``--video`` measures 1920×1080 frames/s through the inference path (ONNX Runtime's CUDA
provider when it is there, else the torch backend in bf16).

    python benchmarks/train_speed.py                                  # 256², ResNet-9, b 1/4/16
    python benchmarks/train_speed.py --modes levers    # plain, then each lever added in turn
    python benchmarks/train_speed.py --max-batch --video --json speed.json
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cyclegan_cli.config import TrainConfig
from cyclegan_cli.training.device import resolve_device, resolve_precision
from cyclegan_cli.training.speed import SpeedPlan, resolve_speed
from cyclegan_cli.training.trainer import Trainer

# bf16 dense tensor-core peaks (TFLOP/s), by a substring of the device name
PEAK_BF16 = {"H200": 989.4, "H100 PCIe": 756.0, "H100": 989.4, "A100": 312.0, "L40S": 362.1,
             "L4": 121.0, "A10": 125.0, "RTX 4090": 165.2, "V100": 125.0}
LEVERS = ["+bf16", "+channels_last", "+fused_adam", "+fuse_calls", "+compile", "+cudagraphs"]


@dataclasses.dataclass
class Mode:
    name: str
    precision: str
    plan: SpeedPlan
    cudnn_benchmark: bool


def modes_for(names: list[str], cfg: TrainConfig, device: torch.device) -> list[Mode]:
    """The requested modes; levers are cumulative in the order of LEVERS."""
    out = []
    for name in names:
        if name == "plain":
            out.append(Mode(name, "fp32", SpeedPlan.plain(), False))
        elif name == "default":
            out.append(Mode(name, resolve_precision("auto", device), resolve_speed(cfg, device),
                            device.type == "cuda"))
        elif name in LEVERS:
            upto = LEVERS[:LEVERS.index(name) + 1]
            plan = SpeedPlan(compile="reduce-overhead" if "+cudagraphs" in upto else
                             "default" if "+compile" in upto else "off",
                             channels_last="+channels_last" in upto,
                             fused_adam="+fused_adam" in upto, fuse_calls="+fuse_calls" in upto)
            precision = resolve_precision("bf16", device) if device.type != "mps" else "fp32"
            out.append(Mode(name, precision, plan, device.type == "cuda"))
        else:
            sys.exit(f"unknown mode {name!r}; use plain, default or {', '.join(LEVERS)}")
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_trainer(cfg: TrainConfig, mode: Mode, device: torch.device) -> Trainer:
    torch.backends.cudnn.benchmark = mode.cudnn_benchmark
    torch.manual_seed(0)
    return Trainer(cfg, device, mode.precision, speed=dataclasses.replace(mode.plan))


def inputs(batch: int, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(batch)
    return tuple((torch.rand(batch, 3, size, size, generator=gen) * 2 - 1).to(device)
                 for _ in range(2))


def step_flops(cfg: TrainConfig, batch: int, size: int, device: torch.device) -> float:
    """FLOPs of one plain training step per image (forward and backward of every network)."""
    from torch.utils.flop_counter import FlopCounterMode

    t = Trainer(cfg, device, "fp32", speed=SpeedPlan.plain())
    a, b = inputs(batch, size, device)
    t.train_step(a, b)  # the pools fill differently on the first step; count the second
    with FlopCounterMode(display=False) as counter:
        t.train_step(a, b)
    return counter.get_total_flops() / batch


def time_modes(cfg: TrainConfig, modes: list[Mode], batch: int, size: int, steps: int,
               warmup: int, rounds: int, device: torch.device) -> dict[str, dict[str, float]]:
    """Images/s (median over interleaved rounds) and peak memory of each mode."""
    trainers = {}
    peaks = {}
    a, b = inputs(batch, size, device)
    for mode in modes:
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        t = make_trainer(cfg, mode, device)
        for _ in range(warmup):
            t.train_step(a, b)
        t.pop_mean_losses()
        sync(device)
        trainers[mode.name] = t
        peaks[mode.name] = (torch.cuda.max_memory_allocated(device) / 2**30
                            if device.type == "cuda" else float("nan"))
    rates: dict[str, list[float]] = {m.name: [] for m in modes}
    for _ in range(rounds):
        for mode in modes:
            t = trainers[mode.name]
            torch.backends.cudnn.benchmark = mode.cudnn_benchmark
            sync(device)
            start = time.perf_counter()
            for _ in range(steps):
                t.train_step(a, b)
            t.pop_mean_losses()  # waits for the device
            sync(device)
            rates[mode.name].append(steps * batch / (time.perf_counter() - start))
    return {name: {"images_per_s": statistics.median(r), "peak_gib": peaks[name],
                   "compile": trainers[name].speed.compile}
            for name, r in rates.items()}


def largest_batch(cfg: TrainConfig, mode: Mode, size: int, device: torch.device,
                  limit: int = 1024) -> int:
    """The largest batch whose training step runs at ``size``² (doubling, then bisection)."""
    def fits(batch: int) -> bool:
        try:
            t = make_trainer(cfg, mode, device)
            a, b = inputs(batch, size, device)
            for _ in range(2):
                t.train_step(a, b)
            sync(device)
            return True
        except torch.cuda.OutOfMemoryError:
            return False
        finally:
            torch.cuda.empty_cache()

    lo, hi = 0, 1
    while hi <= limit and fits(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def video_fps(cfg: TrainConfig, device: torch.device, width: int, height: int,
              frames: int, batch: int) -> dict[str, Any]:
    """Frames/s of ``width``×``height`` frames through the inference core (a ResNet-9 of the
    config's size with its initial weights: speed does not depend on the weights)."""
    import onnxruntime as ort

    from cyclegan_cli.export.onnx_export import export_generator
    from cyclegan_cli.inference import load_model
    from cyclegan_cli.inference.metadata import ModelInfo
    from cyclegan_cli.models import build_generator, generator_size_multiple

    net = build_generator(cfg.netG, ngf=cfg.ngf).eval()
    info = ModelInfo("AtoB", "A", "B", cfg.netG, generator_size_multiple(cfg.netG))
    rng = np.random.default_rng(0)
    clip = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(batch)]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "g.onnx"
            export_generator(net, info, path)
            t = load_model(path, providers=["CUDAExecutionProvider"], max_pixels=10**9)
            how = "onnxruntime CUDA provider, fp32"
            return _time_video(t, clip, frames, how)
    from cyclegan_cli.inference import Translator

    net = net.to(device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)

    @torch.no_grad()
    def run(x: np.ndarray) -> np.ndarray:
        with torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda"):
            y = net(torch.from_numpy(x).to(device))
        return y.float().cpu().numpy()

    t = Translator(run, info, backend="torch", max_pixels=10**9)
    return _time_video(t, clip, frames, f"torch {device.type} {str(dtype).split('.')[-1]} eager")


def _time_video(t: Any, clip: list[np.ndarray], frames: int, how: str) -> dict[str, Any]:
    t.translate_batch(clip)  # warm-up
    start = time.perf_counter()
    done = 0
    while done < frames:
        t.translate_batch(clip)
        done += len(clip)
    return {"frames_per_s": done / (time.perf_counter() - start), "how": how,
            "batch": len(clip), "frames": done}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def peak_tflops(name: str, given: float | None) -> float | None:
    if given:
        return given
    for key, value in PEAK_BF16.items():  # longer keys first where names overlap
        if key in name:
            return value
    return None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="plain,default",
                        help="comma-separated modes, or 'levers' for all of them")
    parser.add_argument("--batches", default="1,4,16")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--net-g", default="resnet_9blocks")
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--ndf", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's bf16 dense peak, if not in the built-in table")
    parser.add_argument("--max-batch", action="store_true",
                        help="find the largest batch for each --max-batch-sizes side (CUDA)")
    parser.add_argument("--max-batch-sizes", default="256,512,1024")
    parser.add_argument("--video", action="store_true", help="1080p inference frames/s")
    parser.add_argument("--video-size", default="1920x1080")
    parser.add_argument("--video-frames", type=int, default=64)
    parser.add_argument("--video-batch", type=int, default=4)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    cfg = TrainConfig(netG=args.net_g, ngf=args.ngf, ndf=args.ndf, netD="basic", seed=0)
    names = ["plain", *LEVERS, "default"] if args.modes == "levers" else args.modes.split(",")
    modes = modes_for(names, cfg, device)
    name = device_name(device)
    peak = peak_tflops(name, args.peak_tflops)
    result: dict[str, Any] = {
        "date": dt.date.today().isoformat(), "device": name, "torch": torch.__version__,
        "command": "python benchmarks/train_speed.py " + " ".join(argv or sys.argv[1:]),
        "size": args.size, "netG": args.net_g, "ngf": args.ngf, "peak_bf16_tflops": peak,
        "modes": {m.name: {"precision": m.precision, **dataclasses.asdict(m.plan)}
                  for m in modes},
        "batches": {},
    }
    print(f"{name}, torch {torch.__version__}: {args.net_g} ngf {args.ngf}, 70×70 PatchGAN, "
          f"{args.size}², median of {args.rounds} interleaved rounds of {args.steps} steps")
    print(f"{'batch':>5} {'mode':<16} {'img/s':>8} {'speed-up':>8} {'peak GiB':>8} "
          f"{'GFLOP/img':>9} {'MFU':>6}")
    for batch in [int(b) for b in args.batches.split(",")]:
        flops = step_flops(cfg, batch, args.size, device)
        timed = time_modes(cfg, modes, batch, args.size, args.steps, args.warmup, args.rounds,
                           device)
        base = timed.get("plain", next(iter(timed.values())))["images_per_s"]
        for mode_name, r in timed.items():
            r["speedup"] = r["images_per_s"] / base
            r["gflop_per_image"] = flops / 1e9
            r["mfu"] = flops * r["images_per_s"] / (peak * 1e12) if peak else None
            mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
            print(f"{batch:>5} {mode_name:<16} {r['images_per_s']:>8.2f} "
                  f"{r['speedup']:>7.2f}× {r['peak_gib']:>8.2f} {r['gflop_per_image']:>9.3g} "
                  f"{mfu:>6}")
        result["batches"][str(batch)] = timed
    if args.max_batch:
        default = modes_for(["default"], cfg, device)[0]
        result["max_batch"] = {}
        for side in [int(s) for s in args.max_batch_sizes.split(",")]:
            if device.type != "cuda":
                print(f"largest batch at {side}²: skipped (needs CUDA: the CPU has no fixed "
                      "memory limit to find)")
                continue
            found = largest_batch(cfg, default, side, device)
            result["max_batch"][str(side)] = found
            print(f"largest batch at {side}² (default mode): {found}")
    if args.video:
        w, h = (int(v) for v in args.video_size.split("x"))
        v = video_fps(cfg, device, w, h, args.video_frames, args.video_batch)
        result["video"] = {"size": args.video_size, **v}
        print(f"inference {args.video_size}: {v['frames_per_s']:.1f} frames/s ({v['how']}, "
              f"batch {v['batch']})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
