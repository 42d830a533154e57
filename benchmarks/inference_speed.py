"""Inference speed (images/s, batch 1) of one generator: torch eager, ONNX Runtime fp32 (the
graph as exported, and the inference core's CPU rewrite) and ONNX Runtime int8, plus the int8
PSNR vs fp32; with ``--cuda`` also torch eager fp32/fp16 on the GPU (and ORT's CUDA provider).

The generator is ``resnet_9blocks`` ngf 64 with random weights (``torch.manual_seed(0)``) unless
``--checkpoint`` names a training run directory (its A->B generator) or a reference ``.pth``.
Every backend is timed on the model alone (NCHW float32 in [-1, 1] in, same out): warm-up,
then runs until ``--seconds`` have passed (and at least ``--min-iters`` runs).

    OMP_NUM_THREADS=2 python benchmarks/inference_speed.py --sizes 256 512
    python benchmarks/inference_speed.py --checkpoint runs/demo --sizes 256
"""

# ruff: noqa: B023  (the timed lambdas are called inside their loop iteration)
from __future__ import annotations

import argparse
import copy
import datetime as dt
import math
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

import cyclegan_cli
from cyclegan_cli.cpu import cpu_count
from cyclegan_cli.export import export_generator
from cyclegan_cli.export.quantize import int8_psnr, photo_crops, quantize_int8
from cyclegan_cli.inference import ModelInfo, load_model
from cyclegan_cli.models import build_generator, generator_size_multiple


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def rate(fn: Callable[[], object], seconds: float, min_iters: int, warmup: int = 2) -> float:
    """Calls per second of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    n, start = 0, time.perf_counter()
    while n < min_iters or time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


def load_net(checkpoint: str | None, arch: str, ngf: int) -> tuple[torch.nn.Module, str, str]:
    """(generator, architecture, description)."""
    if checkpoint is None:
        torch.manual_seed(0)
        desc = f"{arch} ngf={ngf}, random init (seed 0)"
        return build_generator(arch, ngf=ngf).eval(), arch, desc
    path = Path(checkpoint)
    if path.is_dir():
        from cyclegan_cli.rundir import load_generator

        net, cfg = load_generator(path, "AtoB", device="cpu")
        return net.eval(), cfg.netG, f"{cfg.netG} ngf={cfg.ngf}, trained run {path} (AtoB)"
    from cyclegan_cli.export.reference import load_reference_generator

    net, arch, details = load_reference_generator(path)
    return net, arch, f"{arch} ngf={details.get('ngf')}, reference checkpoint {path.name}"


def cuda_runners(net: torch.nn.Module, x: np.ndarray, fp32_file: Path, threads: int
                 ) -> list[tuple[str, Callable[[], object], str]]:
    """(name, timed call, note) for the GPU: torch eager fp32 and fp16, and ONNX Runtime's
    CUDA provider when this onnxruntime has it. Every call ends with a device sync."""
    dev = torch.device("cuda")
    xt = torch.from_numpy(x).to(dev)
    g32 = net.to(dev)
    g16 = copy.deepcopy(net).to(dev).half()
    xt16 = xt.half()

    def eager(g: torch.nn.Module, inp: torch.Tensor) -> Callable[[], object]:
        def call() -> object:
            with torch.inference_mode():
                y = g(inp)
            torch.cuda.synchronize()
            return y
        return call

    out = [("torch eager fp32 (cuda)", eager(g32, xt), "cudnn default"),
           ("torch eager fp16 (cuda)", eager(g16, xt16), "model.half()")]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        core = load_model(fp32_file, threads=threads,
                          providers=[("CUDAExecutionProvider", {}), "CPUExecutionProvider"])
        out.append(("ORT fp32, CUDA provider", lambda: core.run(x), "inference core"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="training run directory or reference .pth")
    parser.add_argument("--arch", default="resnet_9blocks")
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--threads", type=int, default=cpu_count())
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--min-iters", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds over all backends; the median is reported")
    parser.add_argument("--calib", type=int, default=16, help="calibration images for int8")
    parser.add_argument("--psnr-images", type=int, default=8)
    parser.add_argument("--no-int8", action="store_true", help="skip int8 quantization")
    parser.add_argument("--cuda", action="store_true", help="also time the GPU backends")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    net, arch, desc = load_net(args.checkpoint, args.arch, args.ngf)
    multiple = generator_size_multiple(arch)
    info = ModelInfo(direction="AtoB", domain_from="A", domain_to="B", architecture=arch,
                     size_multiple=multiple, version=cyclegan_cli.__version__)
    rows: list[tuple[str, int, float, str]] = []
    errors: dict[int, float] = {}
    psnrs: dict[int, float] = {}
    quant_s = 0.0
    with tempfile.TemporaryDirectory(prefix="cgan-bench-") as tmp:
        fp32 = export_generator(net, info, Path(tmp) / "g.onnx")
        int8 = None
        if not args.no_int8:
            t0 = time.perf_counter()
            int8 = quantize_int8(fp32, Path(tmp) / "g-int8.onnx", photo_crops(args.calib, 256),
                                 256)
            quant_s = time.perf_counter() - t0
        cpu = ["CPUExecutionProvider"]
        plain = load_model(fp32, threads=args.threads, providers=cpu, cpu_rewrite=False)
        core = load_model(fp32, threads=args.threads, providers=cpu, cpu_rewrite=True)
        quant = load_model(int8, threads=args.threads, providers=cpu) if int8 else None
        for size in args.sizes:
            print(f"[{size}x{size}] measuring ...", file=sys.stderr, flush=True)
            x = (np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32) * 2 - 1)
            xt = torch.from_numpy(x)

            def torch_run() -> object:
                with torch.inference_mode():
                    return net(xt)

            with torch.inference_mode():
                ref = net(xt).numpy()
            errors[size] = float(np.abs(core.run(x) - ref).max())
            runners: list[tuple[str, Callable[[], object], str]] = [
                ("torch eager fp32", torch_run, "torch.inference_mode"),
                ("ORT fp32, graph as exported", lambda: plain.run(x), "CGAN_CPU_REWRITE=0"),
                ("ORT fp32, inference core", lambda: core.run(x),
                 "Winograd + sub-pixel rewrite"),
            ]
            if quant is not None:
                runners.append(("ORT int8 (QDQ, static)", lambda: quant.run(x), "inference core"))
            timings: dict[str, list[float]] = {name: [] for name, _, _ in runners}
            for _ in range(args.rounds):
                for name, fn, _ in runners:
                    timings[name].append(rate(fn, args.seconds, args.min_iters))
            rows += [(name, size, statistics.median(timings[name]), note)
                     for name, _, note in runners]
            if args.cuda:
                for name, fn, note in cuda_runners(net, x, fp32, args.threads):
                    rows.append((name, size, statistics.median(
                        rate(fn, args.seconds, 10, warmup=5) for _ in range(args.rounds)), note))
                net.cpu()
            if int8 is not None:
                psnrs[size] = int8_psnr(fp32, int8, photo_crops(args.psnr_images, size,
                                                                seed=12345), threads=args.threads)
        sizes_mb = (Path(fp32).stat().st_size / 1e6,
                    Path(int8).stat().st_size / 1e6 if int8 else float("nan"))

    gpu = f", GPU {torch.cuda.get_device_name()}" if args.cuda else ""
    print(f"## Inference speed: {desc}\n")
    print(f"- date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"- device: {cpu_model()} ({cpu_count()} CPUs usable), threads {args.threads}{gpu}")
    print(f"- versions: python {platform.python_version()}, torch {torch.__version__}, "
          f"onnxruntime {ort.__version__}, onnx {onnx.__version__}, "
          f"cyclegan-cli {cyclegan_cli.__version__}")
    print(f"- command: {' '.join(shlex.quote(a) for a in sys.argv)}")
    print(f"- timing: batch 1, model only (NCHW float32), 2 warm-up runs, then >= "
          f"{args.seconds:g} s and >= {args.min_iters} runs; median of {args.rounds} "
          "interleaved rounds")
    print(f"- files: fp32 {sizes_mb[0]:.1f} MB, int8 {sizes_mb[1]:.1f} MB "
          f"(quantized in {quant_s:.0f} s, {args.calib} calibration crops)\n")
    print("| backend | size | images/s | ms/image | vs torch eager | notes |")
    print("|---|---|---|---|---|---|")
    eager_at = {s: r for name, s, r, _ in rows if name == "torch eager fp32"}
    for name, size, r, note in rows:
        print(f"| {name} | {size}x{size} | {r:.2f} | {1000 / r:.1f} | "
              f"{r / eager_at[size]:.2f}x | {note} |")
    for size, err in errors.items():
        print(f"\ninference core (rewritten graph) vs torch at {size}x{size}: max abs difference "
              f"{err:.2e} (outputs in [-1, 1])")
    tag = ("random weights: NOT representative of a trained generator"
           if args.checkpoint is None else "trained weights")
    for size, psnr in psnrs.items():
        print(f"\nint8 vs fp32 PSNR at {size}x{size}: {psnr:.2f} dB on {args.psnr_images} "
              f"held-out photo crops (uint8 outputs via the inference core; {tag})")
    if not all(math.isfinite(p) for p in psnrs.values()):
        print("\n(inf dB: int8 output identical to fp32)")


if __name__ == "__main__":
    main()
