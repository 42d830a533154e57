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

Checkpoints of other projects are accepted as people publish them (:func:`unwrap_state`,
:func:`normalise_keys`): a ``module.`` prefix (DataParallel) is removed; a state dict wrapped
in a dict (``state_dict``, ``model``, ``netG``, ``generator``… or one generator per direction
under ``G_A``/``G_AB``/``G_A2B``/``netG_A2B``…) is found; residual blocks named other than
``conv_block`` (``model.10.block.*``) are renamed. File names say the direction as the
reference does (``G_A``/``G_B``) or as others do (``G_A2B``, ``netG_B2A``, ``AtoB``).
:func:`describe` is the one line that says what was detected.
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
from cyclegan_cli.userdirs import user_models_dir

EXPECTED = ("expected a state dict of a reference ResNet or U-Net generator (keys like "
            "model.1.weight and model.10.conv_block.1.weight, or model.model.0.weight)")
_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
_BLOCK = re.compile(r"^model\.(\d+)\.conv_block\.")
_ANY_BLOCK = re.compile(r"^model\.(\d+)\.([A-Za-z_][A-Za-z0-9_]*)\.")


def _keys_preview(keys: list[str], limit: int = 6) -> str:
    if not keys:
        return "none"
    more = f", … ({len(keys)} keys)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


# keys under which checkpoints wrap a generator's state dict: one per direction, or one
WRAPPED = {"AtoB": ("G_A", "G_AB", "G_A2B", "netG_A", "netG_AB", "netG_A2B", "generator_A2B",
                    "gen_AB", "G_AtoB"),
           "BtoA": ("G_B", "G_BA", "G_B2A", "netG_B", "netG_BA", "netG_B2A", "generator_B2A",
                    "gen_BA", "G_BtoA")}
WRAPPERS = ("state_dict", "model", "netG", "generator", "G", "net", "params_ema", "params",
            "model_state_dict", "state")


def _is_state(value: Any) -> bool:
    """A mapping of weights (``….weight`` tensors), not a config or an optimiser."""
    return isinstance(value, Mapping) and any(
        isinstance(v, torch.Tensor) and str(k).endswith(".weight") for k, v in value.items())


def _holds_state(value: Any, depth: int = 3) -> bool:
    """Whether a state dict is in ``value`` or in a wrapper inside it."""
    if _is_state(value):
        return True
    return depth > 0 and isinstance(value, Mapping) and any(
        _holds_state(value.get(k), depth - 1) for k in WRAPPERS)


def unwrap_state(raw: Any, direction: str | None = None
                 ) -> tuple[Mapping[str, Any], str | None, str]:
    """(the state dict inside ``raw``, the direction its wrapping says or None, where it was:
    "" for a bare state dict, else the key path). A file holding both directions needs
    ``direction``."""
    where: list[str] = []
    for _ in range(4):  # wrappers nest a few levels at most
        if not isinstance(raw, Mapping):
            break
        found = {d: next((k for k in keys if _is_state(raw.get(k))), None)
                 for d, keys in WRAPPED.items()}
        found = {d: k for d, k in found.items() if k is not None}
        if found:
            if direction is None and len(found) > 1:
                raise ExportError(f"the file holds both generators ({', '.join(found.values())})"
                                  "; give the direction (AtoB or BtoA)")
            chosen = direction if direction in found else next(iter(found))
            if direction is not None and direction not in found:
                raise ExportError(f"the file holds only the {chosen} generator "
                                  f"({found[chosen]}), not {direction}")
            return raw[found[chosen]], chosen, ".".join([*where, found[chosen]])
        key = next((k for k in WRAPPERS if _holds_state(raw.get(k))), None)
        if key is None:  # no known wrapper: the mapping itself is the state dict, or nothing
            return raw, None, ".".join(where)
        where.append(key)
        raw = raw[key]
    if not isinstance(raw, Mapping):
        raise ExportError(f"{EXPECTED}; found a {type(raw).__name__}")
    return raw, None, ".".join(where)


def normalise_keys(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Keys in the reference's naming, and what was renamed: a ``module.`` prefix dropped,
    residual blocks named ``model.N.<name>.*`` (``block``, ``res``…) renamed ``conv_block``."""
    changes = []
    if any(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
        changes.append("module. prefix removed")
    names = {m.group(2) for k in state if (m := _ANY_BLOCK.match(k)) and int(m.group(1)) >= 10}
    if len(names) == 1 and (name := names.pop()) != "conv_block":
        state = {_ANY_BLOCK.sub(lambda m: f"model.{m.group(1)}.conv_block.", k, count=1)
                 if (m := _ANY_BLOCK.match(k)) and int(m.group(1)) >= 10 else k: v
                 for k, v in state.items()}
        changes.append(f"residual blocks model.N.{name}.* read as model.N.conv_block.*")
    return state, changes


def key_pattern(keys: list[str], limit: int = 8) -> str:
    """The shapes of ``keys`` with numbers as N (``model.N.block.N.weight``), most common
    first."""
    counts: dict[str, int] = {}
    for k in keys:
        shape = re.sub(r"\d+", "N", k)
        counts[shape] = counts.get(shape, 0) + 1
    ranked = sorted(counts, key=lambda x: -counts[x])
    more = f", … ({len(ranked)} shapes)" if len(ranked) > limit else ""
    return ", ".join(ranked[:limit]) + more


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
    if not blocks:
        raise ExportError(f"{EXPECTED}; a ResNet stem (model.1, 7x7) but no residual blocks "
                          f"model.10.conv_block.*; its keys look like: "
                          f"{key_pattern(sorted(state))}")
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


def load_reference_generator(path: str | os.PathLike, direction: str | None = None
                             ) -> tuple[nn.Module, str, dict[str, Any]]:
    """Load a reference-layout CycleGAN generator checkpoint (``*_net_G_A.pth``, or another
    project's, see the module docstring); ``direction`` picks the generator of a file that
    holds both.

    Returns the generator (CPU, eval mode), its architecture name (``resnet_9blocks``,
    ``unet_256``, ...) and the detected details (ngf, blocks or depth, norm, dropout,
    channels, size multiple; ``wrapped_in``, ``renamed``, ``direction_in_file``). Unreadable
    files and unknown layouts raise :class:`ExportError`.
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
        inner, in_file, wrapped_in = unwrap_state(raw, direction)
        state, renamed = normalise_keys({str(k): v for k, v in inner.items()
                                         if isinstance(v, torch.Tensor)})
        details = detect_layout(state)
    except ExportError as exc:
        raise ExportError(f"{path}: {exc}") from None
    details.update(wrapped_in=wrapped_in, renamed=renamed, direction_in_file=in_file)
    net = build_reference_generator(details)
    try:
        net.load_state_dict(_fit_state(net, state, details), strict=True)
    except RuntimeError as exc:
        first_line = str(exc).strip().splitlines()
        reason = " ".join(line.strip() for line in first_line[:3])
        raise ExportError(f"{path}: looks like a {details['architecture']} generator but its "
                          f"weights do not fit ({reason[:300]})") from exc
    return net.eval(), details["architecture"], details


_NAMED = {"AtoB": re.compile(r"(?:(?:netG_?|G_)(?:A2B|AtoB|AB|A)|A2B|AtoB)(?![A-Za-z0-9])",
                             re.IGNORECASE),
          "BtoA": re.compile(r"(?:(?:netG_?|G_)(?:B2A|BtoA|BA|B)|B2A|BtoA)(?![A-Za-z0-9])",
                             re.IGNORECASE)}


def direction_from_name(path: str | os.PathLike) -> str | None:
    """The direction a file name says: ``AtoB`` for the reference's ``G_A`` and for
    ``G_AB``, ``G_A2B_epoch33``, ``netG_A2B``, ``…_AtoB``; ``BtoA`` likewise; else None (also
    when the name says both)."""
    stem = Path(path).stem
    said = {d for d, pattern in _NAMED.items()
            if any(not stem[:m.start()][-1:].isalnum() for m in pattern.finditer(stem))}
    return said.pop() if len(said) == 1 else None


def describe(details: dict[str, Any], direction: str, how: str) -> str:
    """One line on what was detected, e.g. ``resnet_9blocks (9 residual blocks, ngf 64,
    instance norm, no dropout), AtoB (from the file name)``."""
    size = (f"{details['n_blocks']} residual blocks" if details["family"] == "resnet"
            else f"{details['num_downs']} levels")
    norm = {"instance": "instance norm", "instance_affine": "affine instance norm",
            "batch": "batch norm", "none": "no norm"}[details["norm"]]
    parts = [f"{details['architecture']} ({size}, ngf {details['ngf']}, {norm}, "
             f"{'dropout' if details['dropout'] else 'no dropout'}), {direction} ({how})"]
    if details.get("wrapped_in"):
        parts.append(f"weights under {details['wrapped_in']!r}")
    parts += details.get("renamed", [])
    return "detected " + "; ".join(parts)


def export_reference(path: str | os.PathLike, direction: str | None = None,
                     out: str | os.PathLike | None = None, *, domain_from: str | None = None,
                     domain_to: str | None = None, fp16: bool = False,
                     verify: bool = True, on_detected: Any = None, source: str | None = None,
                     origin: dict[str, str] | None = None) -> ExportResult:
    """Export a reference-layout generator checkpoint to ONNX (default
    ``<user models folder>/<file stem>.onnx``).

    ``direction`` defaults to what the file name says (``G_A``/``G_A2B``…: AtoB) or, failing
    that, the key the file wraps the generator under, and must be given otherwise. Domain names
    default to ``A``/``B``. ``on_detected`` is called with :func:`describe`'s line before the
    export. ``source`` (default: the file's path) and ``origin`` (where it was published, its
    licence) go into the metadata. The file is verified in ONNX Runtime like
    :func:`~cyclegan_cli.export.runs.export_run` does.
    """
    path = Path(path)
    if direction is not None and direction not in DIRECTIONS:
        raise ExportError(f"unknown direction {direction!r}; use AtoB or BtoA")
    named = direction_from_name(path)
    net, arch, details = load_reference_generator(path, direction or named)
    how = "given" if direction else "from the file name" if named else "from the file's keys"
    direction = direction or named or details["direction_in_file"]
    if direction is None:
        raise ExportError(f"cannot tell the direction of {path.name} (no G_A, G_B, A2B or B2A "
                          "in its name or keys); give it as AtoB or BtoA")
    if details["input_nc"] != 3 or details["output_nc"] != 3:
        raise ExportError(f"{path}: the generator maps {details['input_nc']} to "
                          f"{details['output_nc']} channels; only RGB (3 -> 3) can be exported")
    if on_detected is not None:
        on_detected(describe(details, direction, how))
    src, dst = ("A", "B") if direction == "AtoB" else ("B", "A")
    config = {k: v for k, v in details.items()
              if k not in ("family", "architecture", "wrapped_in", "renamed",
                           "direction_in_file")}
    info = ModelInfo(
        direction=direction,
        domain_from=domain_from or src,
        domain_to=domain_to or dst,
        architecture=arch,
        size_multiple=int(details["size_multiple"]),
        version=cyclegan_cli.__version__,
        source=source or str(path.resolve()),
        config={"origin": "reference-layout CycleGAN checkpoint", **(origin or {}), **config},
    )
    target = Path(out) if out is not None else user_models_dir() / f"{path.stem}.onnx"
    return export_and_verify(net, info, target, fp16=fp16, verify=verify)
