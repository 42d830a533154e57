"""Comparing a bf16 training run with an fp32 one by what the arithmetic guarantees, so the
same bounds hold on every CPU (AVX2, AVX-512 BF16, AMX) and GPU.

Compared: one forward pass and the first step's losses, from the same weights (their relative
error is of the order of bf16's roundoff, whatever the kernels), the cycle and identity losses
over a few steps (set by the images), and the direction the weights move in. Not compared value
by value: adversarial losses after the first update. They are the discriminators' verdicts on
slightly different fakes, and that difference grows with each step at a rate no rounding
analysis bounds (4 steps on an AVX2 CPU moved a discriminator loss by 11 %, 5 % with AVX-512).
"""

from __future__ import annotations

import math

import torch

from cyclegan_cli.config import TrainConfig
from cyclegan_cli.training.speed import SpeedPlan
from cyclegan_cli.training.trainer import Trainer

BF16_U = 2.0 ** -8  # unit roundoff of bfloat16 (8 significant bits)


def bf16_tolerance(layers: int) -> float:
    """Relative RMS error allowed for a bf16 forward pass through ``layers`` convolutions.

    Autocast rounds each convolution's input and output to bf16 (products and sums stay
    fp32), so every layer adds an independent relative error of about ``U·√2``; over the
    network these add up like a random walk, about ``U·√(2·layers)``. Twice that is allowed.
    Kernels differ only in summation order, far below this.
    """
    return 2 * BF16_U * math.sqrt(2 * layers)


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().flatten().float() for t in tensors])


def _run(cfg: TrainConfig, device: torch.device, precision: str, speed: SpeedPlan | None,
         seed: int, steps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    """(one forward output, the losses of each step, how far the weights moved, loss names)."""
    torch.manual_seed(seed)
    t = Trainer(cfg, device, precision, speed=speed)
    start = _flat(t.model.parameters())
    gen = torch.Generator().manual_seed(seed + 1)
    probe = (torch.rand(1, 3, 32, 32, generator=gen) * 2 - 1).to(device)
    with torch.no_grad(), t.autocast():  # same weights, forward only
        out = t.model.G_AB(probe).float()
    losses = []
    for _ in range(steps):
        a = (torch.rand(2, 3, 32, 32, generator=gen) * 2 - 1).to(device)
        b = (torch.rand(2, 3, 32, 32, generator=gen) * 2 - 1).to(device)
        losses.append(t.train_step(a, b))
    assert all(p.dtype == torch.float32 for p in t.model.parameters())  # fp32 master weights
    moved = _flat(t.model.parameters()) - start
    return out.cpu(), torch.stack(losses).cpu(), moved.cpu(), t.loss_names


def assert_bf16_trains_like_fp32(cfg: TrainConfig, device: torch.device, seed: int = 0,
                                 speed: SpeedPlan | None = None, steps: int = 4) -> None:
    """Train ``steps`` steps in fp32 (plain) and in bf16 (with ``speed``) from the same weights
    and data, and check what the arithmetic bounds."""
    out32, l32, moved32, names = _run(cfg, device, "fp32", SpeedPlan.plain(), seed, steps)
    out16, l16, moved16, _ = _run(cfg, device, "bf16", speed, seed, steps)
    assert l16.dtype == torch.float32 and torch.isfinite(l16).all()
    layers = sum(isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)
                 for m in Trainer(cfg, torch.device("cpu")).model.G_AB.modules())

    # one forward pass of the same generator: relative RMS error, and no pixel far off
    error = ((out16 - out32).norm() / out32.norm()).item()
    assert error < bf16_tolerance(layers), (error, bf16_tolerance(layers))
    assert (out16 - out32).abs().max().item() < 0.1  # 5 % of the output range
    assert (out16 != out32).any()  # and bf16 was really used

    # the first step's losses come from the same weights; a cycle passes both generators
    both = bf16_tolerance(2 * layers)
    first = ((l16[0] - l32[0]).abs() / l32[0].abs()).max().item()
    assert first < both, (first, l16[0], l32[0])
    # cycle and identity losses stay close over all the steps (they are set by the images)
    smooth = [i for i, name in enumerate(names) if name.startswith(("cycle", "idt"))]
    drift = ((l16[:, smooth] - l32[:, smooth]).abs() / l32[:, smooth].abs()).max().item()
    assert drift < both, (drift, l16, l32)

    # Adam moves each weight by about ±lr a step: bf16 gradients must point the same way for
    # most weights (cosine 0.6 = at least 80 % of the moves agree; measured 0.85-0.88)
    agree = torch.nn.functional.cosine_similarity(moved16, moved32, dim=0).item()
    assert agree > 0.6, agree
