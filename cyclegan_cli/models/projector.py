"""CUT's patch projector (the reference's ``PatchSampleF``): for each tapped encoder layer, a
two-layer MLP applied to features at sampled positions, L2-normalised (Park et al. 2020).

Its input widths come from the generator's tapped layers, measured once when it is built (the
reference builds it lazily at the first step, which a resumed run would have to replay); so the
projector, its random initialisation and its optimiser exist from the start.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from .layers import init_weights


class PatchProjector(nn.Module):
    """One MLP (``channels[i]`` -> ``units`` -> ReLU -> ``units``) per tapped layer."""

    def __init__(self, channels: list[int], units: int = 256, init_type: str = "normal",
                 init_gain: float = 0.02) -> None:
        super().__init__()
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(c, units), nn.ReLU(), nn.Linear(units, units))
            for c in channels)
        init_weights(self, init_type, init_gain)

    def forward(self, feats: list[Tensor], patches: int, ids: list[Tensor] | None = None
                ) -> tuple[list[Tensor], list[Tensor]]:
        """(projected, positions): for each layer's N x C x H x W features, ``patches``
        positions (drawn with torch's generator, the same for every image of the batch, or
        ``ids`` where given) as N*patches x units unit vectors, and the positions used."""
        projected, used = [], []
        for i, (feat, mlp) in enumerate(zip(feats, self.mlps, strict=True)):
            n, c, h, w = feat.shape
            flat = feat.permute(0, 2, 3, 1).reshape(n, h * w, c)
            idx = (ids[i] if ids is not None else
                   torch.randperm(h * w, device=feat.device)[:min(patches, h * w)])
            picked = flat[:, idx, :].reshape(-1, c)
            projected.append(F.normalize(mlp(picked), dim=1, eps=1e-7))
            used.append(idx)
        return projected, used


def tapped_channels(net: nn.Module, layers: tuple[int, ...], input_nc: int = 3,
                    size: int = 16) -> list[int]:
    """The channel counts of a generator's tapped layers (``net.encode``), from one forward
    pass of a blank image in eval mode (nothing random is drawn, no statistics change)."""
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            feats = net.encode(torch.zeros(1, input_nc, size, size), layers)
    finally:
        net.train(was_training)
    return [f.shape[1] for f in feats]
