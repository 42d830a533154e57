"""Differentiable augmentation of what the discriminators see (DiffAugment, Zhao et al. 2020).

Real and generated images get the same random change before a discriminator judges them, and
the generators' adversarial loss sees it too, so no gradient is lost. Translation moves each
image by up to an eighth of its size (zero fill): a discriminator can then no longer tell real
from fake by where something sits, such as a band along one border.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

SHIFT = 0.125  # largest shift, as a fraction of the height and width


def unchanged(x: Tensor) -> Tensor:
    """No augmentation (what a family calls when ``--d-augment`` is off)."""
    return x


def translate(x: Tensor, ratio: float = SHIFT) -> Tensor:
    """Each image of ``x`` (N, C, H, W) shifted by its own random whole-pixel offset of up to
    ``ratio`` of its size, zero filled; differentiable in ``x``."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if sh == 0 and sw == 0:
        return x
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    b, gy, gx = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device),
                               torch.arange(w, device=x.device), indexing="ij")
    gy = (gy + dy + sh).clamp(0, h + 2 * sh - 1)
    gx = (gx + dx + sw).clamp(0, w + 2 * sw - 1)
    padded = F.pad(x, [sw, sw, sh, sh])
    moved = padded.permute(0, 2, 3, 1)[b, gy, gx].permute(0, 3, 1, 2)  # channels-last memory
    return moved if x.is_contiguous(memory_format=torch.channels_last) else moved.contiguous()
