"""Importing generator checkpoints of the reference PyTorch CycleGAN and exporting them to ONNX.

The reference (junyanz/pytorch-CycleGAN-and-pix2pix) saves each generator as a plain
``state_dict`` (``latest_net_G_A.pth``: A -> B, ``latest_net_G_B.pth``: B -> A). Its keys tell
the architecture apart:

* ResNet: ``model.1.weight`` (7x7 stem conv, shape ngf x 3 x 7 x 7), residual blocks
  ``model.10.conv_block.*`` ... ; ``conv_block.6`` is a conv only with dropout (the Dropout
  layer shifts the second conv from index 5 to 6).
* U-Net: ``model.model.0.weight`` (4x4 conv, ngf x 3 x 4 x 4) and one nested
  ``model.1.model.3.model.3...`` level per downsampling (7 levels: unet_128, 8: unet_256).
  Dropout does not show in the keys (it comes last and has no weights) and does nothing in
  inference anyway.
* Normalisation: convs with a bias and no norm weights -> instance norm (the default); with norm
  ``weight``/``bias`` -> affine instance norm; convs without bias and norms with running
  statistics -> batch norm; neither -> no norm. Running statistics of instance norms (saved by
  old PyTorch versions) are dropped, as the reference does when it loads them.

A ``module.`` prefix (from DataParallel) is removed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

import cyclegan_cli
from cyclegan_cli.errors import ExportError
from cyclegan_cli.export.onnx_export import ExportResult, export_and_verify
from cyclegan_cli.inference.metadata import DIRECTIONS, ModelInfo
from cyclegan_cli.models import ResnetGenerator, UnetGenerator

EXPECTED = ("expected a state dict of a reference ResNet or U-Net generator (keys like "
            "model.1.weight and model.10.conv_block.1.weight, or model.model.0.weight)")
_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
_BLOCK = re.compile(r"^model\.(\d+)\.conv_block\.")


def _keys_preview(keys: list[str], limit: int = 6) -> str:
    if not keys:
        return "none"
    more = f", … ({len(keys)} keys)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def _clean_state(raw: Any) -> dict[str, torch.Tensor]:
    """The tensors of ``raw`` with any DataParallel ``module.`` prefix removed."""
    if isinstance(raw, Mapping) and isinstance(raw.get("state_dict"), Mapping):
        raw = raw["state_dict"]
    if not isinstance(raw, Mapping):
        raise ExportError(f"{EXPECTED}; found a {type(raw).__name__}")
    state = {str(k): v for k, v in raw.items() if isinstance(v, torch.Tensor)}
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def _norm_kind(state: dict[str, torch.Tensor], conv: str, norm: str) -> str:
    """``instance``, ``instance_affine``, ``batch`` or ``none`` from a conv and its norm."""
    has_bias = f"{conv}.bias" in state
    has_weight = f"{norm}.weight" in state
    if has_bias:
        return "instance_affine" if has_weight else "instance"
    return "batch" if has_weight or f"{norm}.running_mean" in state else "none"


def _resnet_details(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    stem = state["model.1.weight"]
    blocks = sorted({int(m.group(1)) for k in state if (m := _BLOCK.match(k))})
    if blocks != list(range(10, 10 + len(blocks))):
        raise ExportError(f"{EXPECTED}; the residual blocks are not model.10, model.11, …")
    n_blocks = len(blocks)
    last = state.get(f"model.{17 + n_blocks}.weight")
    if last is None or last.ndim != 4:
        raise ExportError(f"{EXPECTED}; no final conv model.{17 + n_blocks}.weight")
    second = state.get("model.10.conv_block.6.weight")
    return {
        "family": "resnet", "n_blocks": n_blocks, "ngf": int(stem.shape[0]),
        "input_nc": int(stem.shape[1]), "output_nc": int(last.shape[0]),
        "norm": _norm_kind(state, "model.1", "model.2"),
        "dropout": second is not None and second.ndim == 4,
        "size_multiple": ResnetGenerator.size_multiple,
        "architecture": f"resnet_{n_blocks}blocks",
    }


def _unet_details(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    first = state["model.model.0.weight"]
    up = state.get("model.model.3.weight")
    if up is None or up.ndim != 4:
        raise ExportError(f"{EXPECTED}; no outermost up-convolution model.model.3.weight")
    level, prefix = 1, "model.model.1.model."
    while any(k.startswith(prefix + "3.model.") for k in state):
        level, prefix = level + 1, prefix + "3.model."
    num_downs = level + 1  # the outermost level plus the nested ones
    if num_downs < 5:
        raise ExportError(f"{EXPECTED}; found a U-Net only {num_downs} levels deep")
    return {
        "family": "unet", "num_downs": num_downs, "ngf": int(first.shape[0]),
        "input_nc": int(first.shape[1]), "output_nc": int(up.shape[1]),
        "norm": _norm_kind(state, "model.model.1.model.1", "model.model.1.model.2"),
        "dropout": False, "size_multiple": 2**num_downs,
        "architecture": f"unet_{2**num_downs}",
    }


def detect_layout(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Architecture details of a (cleaned) reference generator state dict, or ExportError."""
    stem = state.get("model.1.weight")
    if stem is not None and stem.ndim == 4 and tuple(stem.shape[2:]) == (7, 7):
        return _resnet_details(state)
    first = state.get("model.model.0.weight")
    if first is not None and first.ndim == 4 and tuple(first.shape[2:]) == (4, 4):
        return _unet_details(state)
    raise ExportError(f"{EXPECTED}; found keys: {_keys_preview(list(state))}")


def _make_instance_norm_affine(net: nn.Module) -> None:
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.InstanceNorm2d):
                setattr(parent, name, nn.InstanceNorm2d(child.num_features, affine=True))


def build_reference_generator(details: dict[str, Any]) -> nn.Module:
    """An untrained generator with the layout :func:`detect_layout` described."""
    kind = details["norm"]
    norm = "instance" if kind.startswith("instance") else kind
    args = (details["input_nc"], details["output_nc"])
    net: nn.Module
    if details["family"] == "resnet":
        net = ResnetGenerator(*args, details["ngf"], norm, details["dropout"],
                              details["n_blocks"])
    else:
        net = UnetGenerator(*args, details["num_downs"], details["ngf"], norm, details["dropout"])
    if kind == "instance_affine":
        _make_instance_norm_affine(net)
    return net


def _fit_state(net: nn.Module, state: dict[str, torch.Tensor],
               details: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Drop instance-norm statistics, fill absent conv biases (reference ``none`` norm) and
    absent BatchNorm step counters (very old PyTorch) with zeros."""
    expected = net.state_dict()
    fitted = {k: v for k, v in state.items()
              if k in expected or not k.endswith(_BUFFERS)}
    details["dropped_buffers"] = len(state) - len(fitted)
    for key, value in expected.items():
        if key in fitted:
            continue
        if (details["norm"] == "none" and key.endswith(".bias")) or \
                key.endswith("num_batches_tracked"):
            fitted[key] = torch.zeros_like(value)
    return fitted


def load_reference_generator(path: str | os.PathLike) -> tuple[nn.Module, str, dict[str, Any]]:
    """Load a reference CycleGAN generator checkpoint (``*_net_G_A.pth`` / ``*_net_G_B.pth``).

    Returns the generator (CPU, eval mode), its architecture name (``resnet_9blocks``,
    ``unet_256``, ...) and the detected details (ngf, blocks or depth, norm, dropout,
    channels, size multiple). Unreadable files and unknown layouts raise :class:`ExportError`.
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"no checkpoint at {path}")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for unreadable files
        raise ExportError(f"{path} is not a readable PyTorch checkpoint "
                          f"({type(exc).__name__})") from exc
    try:
        state = _clean_state(raw)
        details = detect_layout(state)
    except ExportError as exc:
        raise ExportError(f"{path}: {exc}") from None
    net = build_reference_generator(details)
    try:
        net.load_state_dict(_fit_state(net, state, details), strict=True)
    except RuntimeError as exc:
        first_line = str(exc).strip().splitlines()
        reason = " ".join(line.strip() for line in first_line[:3])
        raise ExportError(f"{path}: looks like a {details['architecture']} generator but its "
                          f"weights do not fit ({reason[:300]})") from exc
    return net.eval(), details["architecture"], details


def direction_from_name(path: str | os.PathLike) -> str | None:
    """``AtoB`` for reference ``G_A`` files, ``BtoA`` for ``G_B`` files, else None."""
    stem = Path(path).stem
    if re.search(r"G_(A|AB)(?![A-Za-z0-9])", stem):
        return "AtoB"
    if re.search(r"G_(B|BA)(?![A-Za-z0-9])", stem):
        return "BtoA"
    return None


def export_reference(path: str | os.PathLike, direction: str | None = None,
                     out: str | os.PathLike | None = None, *, domain_from: str | None = None,
                     domain_to: str | None = None, fp16: bool = False,
                     verify: bool = True) -> ExportResult:
    """Export a reference generator checkpoint to ONNX (default ``weights/<file stem>.onnx``).

    ``direction`` defaults to what the file name says (``G_A``: AtoB, ``G_B``: BtoA) and must be
    given otherwise. Domain names default to ``A``/``B``. The file is verified in ONNX Runtime
    like :func:`~cyclegan_cli.export.runs.export_run` does.
    """
    path = Path(path)
    direction = direction or direction_from_name(path)
    if direction is None:
        raise ExportError(f"cannot tell the direction of {path.name} (no G_A or G_B in the "
                          "name); give it as AtoB or BtoA")
    if direction not in DIRECTIONS:
        raise ExportError(f"unknown direction {direction!r}; use AtoB or BtoA")
    net, arch, details = load_reference_generator(path)
    if details["input_nc"] != 3 or details["output_nc"] != 3:
        raise ExportError(f"{path}: the generator maps {details['input_nc']} to "
                          f"{details['output_nc']} channels; only RGB (3 -> 3) can be exported")
    src, dst = ("A", "B") if direction == "AtoB" else ("B", "A")
    config = {k: v for k, v in details.items() if k not in ("family", "architecture")}
    info = ModelInfo(
        direction=direction,
        domain_from=domain_from or src,
        domain_to=domain_to or dst,
        architecture=arch,
        size_multiple=int(details["size_multiple"]),
        version=cyclegan_cli.__version__,
        source=str(path.resolve()),
        config={"origin": "reference CycleGAN checkpoint", **config},
    )
    target = Path(out) if out is not None else Path("weights") / f"{path.stem}.onnx"
    return export_and_verify(net, info, target, fp16=fp16, verify=verify)

