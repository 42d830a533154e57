"""The speed levers of the training step (none changes the losses): torch.compile,
channels-last memory layout, fused Adam and fused network calls, resolved for a device."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from cyclegan_cli.config import TrainConfig


@dataclass
class SpeedPlan:
    """The levers a :class:`~cyclegan_cli.training.trainer.Trainer` uses."""

    compile: str  # "off" or a torch.compile mode
    channels_last: bool
    fused_adam: bool
    fuse_calls: bool

    @classmethod
    def plain(cls) -> SpeedPlan:
        """No levers: the reference implementation's way (with --precision fp32)."""
        return cls("off", False, False, False)

    def describe(self) -> str:
        parts = [f"compile {self.compile}"]
        parts += [name for name, on in (("channels-last", self.channels_last),
                                        ("fused Adam", self.fused_adam),
                                        ("fused calls", self.fuse_calls)) if on]
        return ", ".join(parts)


def triton_available() -> bool:
    """Whether torch.compile's default backend can generate CUDA code here."""
    return importlib.util.find_spec("triton") is not None


def resolve_speed(cfg: TrainConfig, device: torch.device) -> SpeedPlan:
    """The levers for ``device``: ``auto`` turns compile, channels-last and fused Adam on for
    CUDA only; fused calls need per-sample normalisation."""
    cuda = device.type == "cuda"

    def switch(value: str) -> bool:
        return cuda if value == "auto" else value == "on"

    mode = cfg.compile
    if mode == "auto":
        mode = "default" if cuda and triton_available() else "off"
    return SpeedPlan(compile=mode, channels_last=switch(cfg.channels_last),
                     fused_adam=switch(cfg.fused_adam),
                     fuse_calls=cfg.fuse_calls and cfg.norm != "batch")


def compiled(net: nn.Module, mode: str) -> Callable[..., torch.Tensor]:
    """``net`` compiled with ``mode`` (static shapes), or ``net`` itself for ``off``."""
    if mode == "off":
        return net
    return torch.compile(net, mode=mode, dynamic=False)
