"""Choosing the device and the arithmetic precision."""

from __future__ import annotations

import torch

from cyclegan_cli.errors import CganError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; other names are checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise CganError(f"unknown device {name!r} (use auto, cpu, cuda, cuda:N or mps)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CganError(f"--device {name}: no CUDA GPU is available here (use --device cpu)")
    if device.type == "cuda" and device.index is not None \
            and device.index >= torch.cuda.device_count():
        raise CganError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise CganError("--device mps: Apple MPS is not available here")
    return device


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` is bf16 on CUDA (when supported) and fp32 elsewhere."""
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16"
        return "fp32"
    if precision not in PRECISIONS:
        raise CganError(f"unknown precision {precision!r}; choose fp32, bf16 or fp16")
    if precision == "fp16" and device.type == "cpu":
        raise CganError("--precision fp16 needs a GPU; use bf16 or fp32 on the CPU")
    return precision
