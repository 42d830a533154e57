"""An exponential moving average of generator weights (``--ema``): evaluation, the best
checkpoint and export use the averaged networks, which are steadier than the trained ones."""

from __future__ import annotations

import torch
from torch import nn


class WeightAverage:
    """Moves each averaged network towards its trained one after every step. The decay ramps
    up over the first steps (early averages are not dominated by the random start); buffers
    (batch-norm statistics) are copied, as they are not trained."""

    def __init__(self, decay: float, pairs: list[tuple[nn.Module, nn.Module]]) -> None:
        self.decay, self.pairs, self.updates = decay, pairs, 0

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for net, avg in self.pairs:
            torch._foreach_lerp_(list(avg.parameters()), list(net.parameters()), 1 - decay)
            for mine, theirs in zip(avg.buffers(), net.buffers(), strict=True):
                mine.copy_(theirs)
