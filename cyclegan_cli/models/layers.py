"""Normalization choices and weight initialization shared by all networks."""

from __future__ import annotations

import functools
from collections.abc import Callable

from torch import nn
from torch.nn import init

NORMS = ("instance", "batch", "none")
INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")

_CONV_OR_LINEAR = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Linear,
)


def _check_norm(kind: str) -> None:
    if kind not in NORMS:
        raise ValueError(f"unknown norm {kind!r}; choose one of: {', '.join(NORMS)}")


def norm_layer(kind: str) -> Callable[[int], nn.Module]:
    """Return a factory ``channels -> normalization module`` for ``kind``.

    ``instance``: InstanceNorm2d without affine parameters or running statistics (no
    state_dict entries, as in the reference); ``batch``: affine BatchNorm2d with running
    statistics; ``none``: ``nn.Identity`` (it ignores the channel count).
    """
    _check_norm(kind)
    if kind == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if kind == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    return nn.Identity


def uses_bias(kind: str) -> bool:
    """Whether convolutions followed by a ``kind`` norm carry a bias.

    BatchNorm's own shift makes a conv bias redundant. Unlike the reference, a network
    without normalization (``none``) keeps its conv biases.
    """
    _check_norm(kind)
    return kind != "batch"


def init_weights(net: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialize ``net`` in place like the reference CycleGAN and return it.

    Conv/Linear weights: N(0, gain), Xavier-normal(gain), Kaiming-normal (fan_in, gain
    unused) or orthogonal(gain); their biases are zeroed. BatchNorm2d: weight N(1, gain),
    bias 0.
    """
    if init_type not in INIT_TYPES:
        raise ValueError(
            f"unknown init type {init_type!r}; choose one of: {', '.join(INIT_TYPES)}"
        )

    def init_module(m: nn.Module) -> None:
        if isinstance(m, _CONV_OR_LINEAR):
            if init_type == "normal":
                init.normal_(m.weight, 0.0, gain)
            elif init_type == "xavier":
                init.xavier_normal_(m.weight, gain=gain)
            elif init_type == "kaiming":
                init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                init.orthogonal_(m.weight, gain=gain)
            if m.bias is not None:
                init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            init.normal_(m.weight, 1.0, gain)
            init.zeros_(m.bias)

    net.apply(init_module)
    return net
