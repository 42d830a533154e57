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
  order), for the notes table in docs/benchmarks.md;
- ``default/FIELD=VALUE[/...]``: the default with some of its SpeedPlan fields changed, e.g.
  ``default/channels_last=off`` or ``default/compile=reduce-overhead``.

Reported per mode and batch: images/s (per domain), speed-up over ``plain``, peak device memory,
and model-FLOP utilisation: FLOPs of one step (torch.utils.flop_counter, per image) × images/s
over the device's bf16 dense peak (``--peak-tflops`` for devices not in the table).
``--max-batch`` finds the largest batch that fits for each ``--max-batch-sizes`` side;
``--video`` measures 1920×1080 frames/s through the inference core's Translator (uint8 frames
in and out): ONNX Runtime's CUDA provider when it is there, and the torch backend as
``cgan translate`` runs it (fp32 eager), in bf16 with channels-last, and bf16 compiled, plus
the compiled network alone on device tensors (the ceiling without host-side work). With
``--json`` the results file is rewritten after each part, so a run that is stopped keeps what
it measured.

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
        elif name.startswith("default/"):
            plan = resolve_speed(cfg, device)
            for change in name.split("/")[1:]:
                field, _, value = change.partition("=")
                if field not in {f.name for f in dataclasses.fields(SpeedPlan)}:
                    sys.exit(f"unknown SpeedPlan field {field!r} in mode {name!r}")
                current = getattr(plan, field)
                plan = dataclasses.replace(plan, **{field: value in ("on", "true", "1")
                                                    if isinstance(current, bool) else value})
            out.append(Mode(name, resolve_precision("auto", device), plan,
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
            sys.exit(f"unknown mode {name!r}; use plain, default, default/FIELD=VALUE or "
                     f"{', '.join(LEVERS)}")
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
                  tolerance: float = 0.03) -> dict[str, Any]:
    """The largest batch whose training step runs at ``size``², within ``tolerance``.

    Peak memory is linear in the batch: two small batches give the line, the line gives a
    guess, and a bracket around the guess is bisected (a few tries near the limit, instead of
    doubling from 1, each try as long as the largest step)."""
    def peak(batch: int) -> int | None:
        """Peak bytes of the first step at ``batch`` (None: out of memory)."""
        t = None
        try:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            t = make_trainer(cfg, mode, device)
            a, b = inputs(batch, size, device)
            t.train_step(a, b)
            sync(device)
            return torch.cuda.max_memory_allocated(device)
        except torch.cuda.OutOfMemoryError:
            return None
        finally:
            del t
            torch.cuda.empty_cache()

    small = peak(2), peak(4)
    if None in small:
        return {"largest": 1 if peak(1) else 0, "tries": 3}
    per_image = (small[1] - small[0]) / 2
    fixed = small[0] - 2 * per_image
    free, _ = torch.cuda.mem_get_info(device)
    guess = max(4, int((free - fixed) / per_image))
    tries = 2
    lo, hi = int(guess * 0.95), int(guess * 1.05) + 1  # lo fits and hi does not, once checked
    while peak(lo) is None:  # the guess was high: step the bracket down by tenths
        lo, hi, tries = int(lo / 1.1), lo, tries + 1
    tries += 1
    while peak(hi) is not None:  # or low: step it up
        lo, hi, tries = hi, int(hi * 1.1) + 1, tries + 1
    tries += 1
    while hi - lo > max(1, int(lo * tolerance)):
        mid = (lo + hi) // 2
        tries += 1
        lo, hi = (mid, hi) if peak(mid) is not None else (lo, mid)
    return {"largest": lo, "does_not_fit": hi, "guess_from_two_batches": guess, "tries": tries,
            "gib_per_image": per_image / 2**30}


def video_fps(cfg: TrainConfig, device: torch.device, width: int, height: int,
              frames: int, batch: int, compile_mode: str = "default",
              all_ways: bool = False) -> dict[str, Any]:
    """Frames/s of ``width``×``height`` uint8 frames through the inference core's Translator
    for each way of running the generator here (a ResNet of the config's size with its
    initial weights: speed does not depend on the weights), and how far the bf16 ways land
    from fp32 in 8-bit levels."""
    import onnxruntime as ort

    from cyclegan_cli.export.onnx_export import export_generator
    from cyclegan_cli.inference import Translator, load_model
    from cyclegan_cli.inference.metadata import ModelInfo
    from cyclegan_cli.models import build_generator, generator_size_multiple
    from cyclegan_cli.rundir import torch_runner

    torch.manual_seed(0)
    net = build_generator(cfg.netG, ngf=cfg.ngf).eval()
    info = ModelInfo("AtoB", "A", "B", cfg.netG, generator_size_multiple(cfg.netG))
    rng = np.random.default_rng(0)
    clip = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(batch)]
    ways: dict[str, Any] = {}
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "g.onnx"
            export_generator(net, info, path)
            t = load_model(path, provider="cuda", max_pixels=10**9)
            ways["onnxruntime CUDA fp32"] = _time_video(t, clip, frames)
    net = net.to(device)
    ways["torch fp32 eager (cgan translate --backend torch)"] = _time_video(
        Translator(torch_runner(net, device), info, backend="torch", max_pixels=10**9),
        clip, frames)
    reference = ways["torch fp32 eager (cgan translate --backend torch)"].pop("outputs")
    if device.type == "cuda" or all_ways:
        fast = net.to(memory_format=torch.channels_last)
        for name, model in (("torch bf16 channels-last eager", fast),
                            (f"torch bf16 channels-last compile {compile_mode}",
                             torch.compile(fast, mode=compile_mode, dynamic=False))):
            ways[name] = _time_video(Translator(_bf16_runner(model, device), info,
                                                backend="torch", max_pixels=10**9),
                                     clip, frames, reference)
        x = torch.rand(batch, 3, height, width, device=device) * 2 - 1
        model = torch.compile(fast, mode=compile_mode, dynamic=False)
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16):
            for _ in range(3):
                model(x)
            sync(device)
            start = time.perf_counter()
            done = 0
            while done < frames:
                model(x)
                done += batch
            sync(device)
        ways[f"network alone, bf16 compile {compile_mode}, device tensors"] = {
            "frames_per_s": done / (time.perf_counter() - start), "frames": done}
    for way in ways.values():
        way.pop("outputs", None)
    return {"batch": batch, "ways": ways}


def _bf16_runner(net: Any, device: torch.device) -> Any:
    """Like ``torch_runner``, under bf16 autocast with channels-last input."""
    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16):
            t = torch.from_numpy(np.ascontiguousarray(x)).to(device)
            y = net(t.contiguous(memory_format=torch.channels_last))
        return y.float().cpu().numpy()
    return run


def _time_video(t: Any, clip: list[np.ndarray], frames: int,
                reference: list[np.ndarray] | None = None) -> dict[str, Any]:
    outputs = t.translate_batch(clip)  # warm-up (and compilation)
    t.translate_batch(clip)
    start = time.perf_counter()
    done = 0
    while done < frames:
        t.translate_batch(clip)
        done += len(clip)
    result: dict[str, Any] = {"frames_per_s": done / (time.perf_counter() - start),
                              "frames": done, "outputs": outputs}
    if reference is not None:
        diff = np.concatenate([np.abs(a.astype(np.int16) - b).ravel()
                               for a, b in zip(outputs, reference, strict=True)])
        result["vs_fp32_levels"] = {"max": int(diff.max()), "mean": float(diff.mean()),
                                    "p999": float(np.percentile(diff, 99.9))}
    return result


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
    parser.add_argument("--max-batch-mode", default="default/compile=off",
                        help="the mode whose largest batch is found (eager by default: each "
                             "try of a compiled mode would compile again)")
    parser.add_argument("--video", action="store_true", help="1080p inference frames/s")
    parser.add_argument("--video-size", default="1920x1080")
    parser.add_argument("--video-frames", type=int, default=64)
    parser.add_argument("--video-batch", type=int, default=4)
    parser.add_argument("--video-compile", default="default",
                        help="torch.compile mode for the compiled video ways")
    parser.add_argument("--video-all-ways", action="store_true",
                        help="also the bf16 and compiled ways off CUDA (to try the script)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    # one process compiles the networks for every mode and batch (static shapes)
    torch._dynamo.config.cache_size_limit = 256
    torch._dynamo.config.accumulated_cache_size_limit = 4096
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
    for batch in [int(b) for b in args.batches.split(",") if b]:  # "" times no training
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
        save(result, args.json)
    if args.max_batch:
        default = modes_for([args.max_batch_mode], cfg, device)[0]
        result["max_batch"] = {"mode": default.name}
        for side in [int(s) for s in args.max_batch_sizes.split(",")]:
            if device.type != "cuda":
                print(f"largest batch at {side}²: skipped (needs CUDA: the CPU has no fixed "
                      "memory limit to find)")
                continue
            found = largest_batch(cfg, default, side, device)
            result["max_batch"][str(side)] = found
            save(result, args.json)
            print(f"largest batch at {side}² ({default.name}): {found['largest']} "
                  f"({found.get('does_not_fit', '-')} does not fit; {found['tries']} tries)")
    if args.video:
        w, h = (int(v) for v in args.video_size.split("x"))
        v = video_fps(cfg, device, w, h, args.video_frames, args.video_batch,
                      args.video_compile, args.video_all_ways)
        result["video"] = {"size": args.video_size, **v}
        save(result, args.json)
        for way, r in v["ways"].items():
            levels = r.get("vs_fp32_levels")
            off = (f", vs fp32: max {levels['max']} / mean {levels['mean']:.3f} levels"
                   if levels else "")
            print(f"inference {args.video_size}, batch {v['batch']}: "
                  f"{r['frames_per_s']:7.1f} frames/s  {way}{off}")
    save(result, args.json)
    return result


def save(result: dict[str, Any], path: str | None) -> None:
    """Write ``result`` to ``path`` (if given) now, so a stopped run keeps what it measured."""
    if path:
        Path(path).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
