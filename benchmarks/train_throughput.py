"""Training-step throughput (images/s per domain) of the CycleGAN trainer on synthetic batches.

Measures ``Trainer.train_step`` alone (no data loading): warm-up steps, then timed steps with a
device synchronisation at the end. Prints one line per configuration with the device used.

    python benchmarks/train_throughput.py                      # demo-sized model on this machine
    python benchmarks/train_throughput.py --net-g resnet_9blocks --ngf 64 --size 256 --batch 1
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from cyclegan_cli.config import TrainConfig
from cyclegan_cli.training.device import resolve_device, resolve_precision
from cyclegan_cli.training.trainer import Trainer


def measure(cfg: TrainConfig, size: int, batch: int, steps: int, warmup: int,
            device: torch.device, precision: str) -> float:
    trainer = Trainer(cfg, device, precision)
    gen = torch.Generator().manual_seed(0)
    a = (torch.rand(batch, 3, size, size, generator=gen) * 2 - 1).to(device)
    b = (torch.rand(batch, 3, size, size, generator=gen) * 2 - 1).to(device)
    for _ in range(warmup):
        trainer.train_step(a, b)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(a, b)
    trainer.pop_mean_losses()  # forces the device to finish
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net-g", default="resnet_6blocks")
    parser.add_argument("--net-d", default="n_layers")
    parser.add_argument("--n-layers-d", type=int, default=2)
    parser.add_argument("--ngf", type=int, default=16)
    parser.add_argument("--ndf", type=int, default=32)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    cfg = TrainConfig(netG=args.net_g, netD=args.net_d, n_layers_D=args.n_layers_d,
                      ngf=args.ngf, ndf=args.ndf, seed=0)
    rate = measure(cfg, args.size, args.batch, args.steps, args.warmup, device, precision)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(f"{args.net_g} ngf={args.ngf} D={args.net_d} size={args.size} batch={args.batch} "
          f"{device} ({name or platform.machine()}, {torch.get_num_threads()} threads) "
          f"{precision}: {rate:.3g} img/s over {args.steps} steps, torch {torch.__version__}")


if __name__ == "__main__":
    main()
