"""Inference speed (images/s, batch 1) of one generator: torch eager, ONNX Runtime fp32
(default and tuned session options) and ONNX Runtime int8, plus the int8 PSNR vs fp32.

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
import datetime as dt
import math
import platform
import shlex
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
from cyclegan_cli.export import export_generator
from cyclegan_cli.export.quantize import int8_psnr, photo_crops, quantize_int8
from cyclegan_cli.inference import ModelInfo, load_model
from cyclegan_cli.inference.session import cpu_count, session_options
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
        from cyclegan_cli.training.restore import load_generator

        net, cfg = load_generator(path, "AtoB", device="cpu")
        return net.eval(), cfg.netG, f"{cfg.netG} ngf={cfg.ngf}, trained run {path} (AtoB)"
    from cyclegan_cli.export.reference import load_reference_generator

    net, arch, details = load_reference_generator(path)
    return net, arch, f"{arch} ngf={details.get('ngf')}, reference checkpoint {path.name}"


# Candidate tunings for the fp32 session (applied on top of the default session options).
def _opt_no_spin(o: ort.SessionOptions) -> None:
    o.add_session_config_entry("session.intra_op.allow_spinning", "0")


def _opt_extended(o: ort.SessionOptions) -> None:  # no NCHWc layout transformer
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED


def _opt_no_mem_pattern(o: ort.SessionOptions) -> None:
    o.enable_mem_pattern = False


def _opt_parallel(o: ort.SessionOptions) -> None:
    o.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    o.inter_op_num_threads = 1


def _opt_denormal(o: ort.SessionOptions) -> None:
    o.add_session_config_entry("session.set_denormal_as_zero", "1")


TUNINGS: dict[str, Callable[[ort.SessionOptions], None]] = {
    "allow_spinning=0": _opt_no_spin,
    "opt level EXTENDED (no NCHWc)": _opt_extended,
    "mem pattern off": _opt_no_mem_pattern,
    "ORT_PARALLEL": _opt_parallel,
    "denormal_as_zero": _opt_denormal,
}


def ort_runner(model: str, threads: int, tweak: Callable[[ort.SessionOptions], None] | None,
               x: np.ndarray) -> Callable[[], object]:
    opts = session_options(threads)
    if tweak:
        tweak(opts)
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    return lambda: sess.run(["output"], {"input": x})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="training run directory or reference .pth")
    parser.add_argument("--arch", default="resnet_9blocks")
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--threads", type=int, default=cpu_count())
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--min-iters", type=int, default=3)
    parser.add_argument("--calib", type=int, default=16, help="calibration images for int8")
    parser.add_argument("--psnr-images", type=int, default=8)
    parser.add_argument("--no-tuning", action="store_true", help="skip the tuning sweep")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    net, arch, desc = load_net(args.checkpoint, args.arch, args.ngf)
    multiple = generator_size_multiple(arch)
    info = ModelInfo(direction="AtoB", domain_from="A", domain_to="B", architecture=arch,
                     size_multiple=multiple, version=cyclegan_cli.__version__)
    rows: list[tuple[str, int, float, str]] = []
    tuning_rows: list[tuple[int, str, float]] = []
    with tempfile.TemporaryDirectory(prefix="cgan-bench-") as tmp:
        fp32 = export_generator(net, info, Path(tmp) / "g.onnx")
        t0 = time.perf_counter()
        int8 = quantize_int8(fp32, Path(tmp) / "g-int8.onnx", photo_crops(args.calib, 256), 256)
        quant_s = time.perf_counter() - t0
        # Offline-optimised copy (what ORT would otherwise do at every session start).
        offline = str(Path(tmp) / "g-opt.onnx")
        o = session_options(args.threads)
        o.optimized_model_filepath = offline
        ort.InferenceSession(str(fp32), o, providers=["CPUExecutionProvider"])
        for size in args.sizes:
            print(f"[{size}x{size}] measuring ...", file=sys.stderr, flush=True)
            x = (np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32) * 2 - 1)
            xt = torch.from_numpy(x)

            def torch_run() -> object:
                with torch.inference_mode():
                    return net(xt)

            eager = rate(torch_run, args.seconds, args.min_iters)
            rows.append(("torch eager fp32", size, eager, "torch.inference_mode"))
            core = load_model(fp32, threads=args.threads)  # the inference core's session
            default = rate(lambda: core.run(x), args.seconds, args.min_iters)
            rows.append(("ORT fp32, make_session", size, default, "inference core"))
            best_name, best = "", 0.0
            if not args.no_tuning:
                for name, tweak in TUNINGS.items():
                    r = rate(ort_runner(str(fp32), args.threads, tweak, x), args.seconds,
                             args.min_iters)
                    tuning_rows.append((size, name, r))
                    if r > best:
                        best_name, best = name, r
                off = rate(ort_runner(offline, args.threads,
                                      lambda o: setattr(o, "graph_optimization_level",
                                                        ort.GraphOptimizationLevel.ORT_DISABLE_ALL),
                                      x), args.seconds, args.min_iters)
                tuning_rows.append((size, "offline-optimised file, opt level DISABLE", off))
                if off > best:
                    best_name, best = "offline-optimised file", off
                rows.append(("ORT fp32, best tuning", size, best, best_name))
            q = load_model(int8, threads=args.threads)
            rows.append(("ORT int8 (QDQ, static)", size, rate(lambda: q.run(x), args.seconds,
                                                             args.min_iters), "inference core"))
        psnrs = {size: int8_psnr(fp32, int8, photo_crops(args.psnr_images, size, seed=12345),
                                 threads=args.threads) for size in args.sizes}
        sizes_mb = (Path(fp32).stat().st_size / 1e6, Path(int8).stat().st_size / 1e6)

    print(f"## Inference speed: {desc}\n")
    print(f"- date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"- device: {cpu_model()} ({cpu_count()} CPUs usable), threads {args.threads}")
    print(f"- versions: python {platform.python_version()}, torch {torch.__version__}, "
          f"onnxruntime {ort.__version__}, onnx {onnx.__version__}, "
          f"cyclegan-cli {cyclegan_cli.__version__}")
    print(f"- command: {' '.join(shlex.quote(a) for a in sys.argv)}")
    print(f"- timing: batch 1, model only (NCHW float32), 2 warm-up runs, then >= "
          f"{args.seconds:g} s and >= {args.min_iters} runs")
    print(f"- files: fp32 {sizes_mb[0]:.1f} MB, int8 {sizes_mb[1]:.1f} MB "
          f"(quantized in {quant_s:.0f} s, {args.calib} calibration crops)\n")
    print("| backend | size | images/s | ms/image | vs torch eager | notes |")
    print("|---|---|---|---|---|---|")
    eager_at = {s: r for name, s, r, _ in rows if name.startswith("torch")}
    for name, size, r, note in rows:
        print(f"| {name} | {size}x{size} | {r:.2f} | {1000 / r:.0f} | "
              f"{r / eager_at[size]:.2f}x | {note} |")
    tag = ("random weights: NOT representative of a trained generator"
           if args.checkpoint is None else "trained weights")
    for size, psnr in psnrs.items():
        print(f"\nint8 vs fp32 PSNR at {size}x{size}: {psnr:.2f} dB on {args.psnr_images} "
              f"held-out photo crops (uint8 outputs via the inference core; {tag})")
    if tuning_rows:
        print("\n| fp32 session tuning | size | images/s | vs make_session |")
        print("|---|---|---|---|")
        default_at = {s: r for name, s, r, _ in rows if name.startswith("ORT fp32, make")}
        for size, name, r in tuning_rows:
            print(f"| {name} | {size}x{size} | {r:.2f} | {r / default_at[size]:.2f}x |")
    if not all(math.isfinite(p) for p in psnrs.values()):
        print("\n(inf dB: int8 output identical to fp32)")


if __name__ == "__main__":
    main()
