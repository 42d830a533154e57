"""Mixed precision for a training step: autocast to bf16 or fp16, and fp16's gradient scaler."""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor

from cyclegan_cli.training.device import PRECISIONS


class Amp:
    """``precision`` (fp32, bf16, fp16) on ``device``."""

    def __init__(self, device: torch.device, precision: str = "fp32") -> None:
        self.precision = precision
        self.dtype = PRECISIONS[precision]
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        self._device_type = device.type

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self._device_type, dtype=self.dtype)

    def backward_and_step(self, loss: Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backward pass (scaled for fp16) and the optimiser step."""
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)

    def update(self) -> None:
        """After the step's last optimiser step: let fp16's scale adapt."""
        self.scaler.update()
