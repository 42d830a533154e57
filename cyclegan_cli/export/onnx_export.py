"""Writing a generator to one self-describing ONNX file, and checking the file against torch.

The file takes ``input`` (N x 3 x H x W float32 RGB in [-1, 1]) and returns ``output`` of the
same shape; batch, height and width are dynamic. Everything needed to use it (direction,
domains, architecture, size multiple, ...) is stored in ``metadata_props`` by
:meth:`ModelInfo.to_props`.

The legacy TorchScript exporter (``torch.onnx.export(..., dynamo=False)``) is used: it handles
reflection padding, instance norm and dynamic spatial axes without extra dependencies (the
dynamo exporter needs ``onnxscript``).

Half precision (``fp16=True``): the generator is converted with ``.half()`` and wrapped so that
the graph casts its float32 input to float16, computes in float16 and casts the result back.
The file therefore keeps the float32 ``input``/``output`` contract; only ``precision`` in the
metadata says ``fp16``. It is about half the size, and faster on GPUs with fast float16.
"""

from __future__ import annotations

import copy
import io
import math
import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from cyclegan_cli.atomic import atomic_open, remove_stale_temporaries
from cyclegan_cli.errors import ExportError
from cyclegan_cli.inference.metadata import INPUT_NAME, OUTPUT_NAME, ModelInfo
from cyclegan_cli.inference.naming import twin_path

DEFAULT_OPSET = 17
FP32_TOL = 1e-4  # max abs difference accepted between ORT and torch for a float32 file
FP16_TOL = 2e-2  # the same for a float16 file (compared with the float32 torch net)
_AXES = {0: "batch", 2: "height", 3: "width"}

Size = tuple[int, int]


@dataclass
class ExportResult:
    """One exported generator: its file(s) and how closely ONNX Runtime matched torch."""

    path: Path
    direction: str
    max_abs_diff: float
    fp16_path: Path | None = None
    fp16_diff: float | None = None
    int8_path: Path | None = None
    int8_psnr: float | None = None  # dB, int8 vs fp32 uint8 outputs: mean over held-out crops
    int8_report: Any = None  # export.quantize.Int8Report: per image, the worst, 512²
    warnings: list[str] = field(default_factory=list)


class _Float16Graph(nn.Module):
    """Runs a half-precision copy of ``net`` behind float32 input and output."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = copy.deepcopy(net).half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.half()).float()


def fp16_path_for(path: str | os.PathLike) -> Path:
    """Where the half-precision twin of ``path`` goes: ``name.onnx`` -> ``name-fp16.onnx``."""
    return twin_path(path, "fp16")


def input_channels(net: nn.Module) -> int:
    """Channels the generator expects: ``in_channels`` of its first convolution."""
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    raise ExportError("the network has no Conv2d layer; is it a CycleGAN generator?")


def default_sizes(size_multiple: int) -> list[Size]:
    """Two different (height, width) sizes, multiples of ``size_multiple``, for verification.

    ResNet (multiple 4): 64x64 and 96x128; U-Net 128: 128x128 and 128x256; U-Net 256: 256x256
    and 256x512.
    """
    m = max(1, size_multiple)
    side = m * math.ceil(64 / m)
    height = side if m >= 64 else m * math.ceil(side * 3 / 2 / m)
    return [(side, side), (height, 2 * side)]


def _to_onnx_bytes(net: nn.Module, example: torch.Tensor, opset: int) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter is deprecated and chatty (tracer and constant-folding notes);
        # correctness is checked by verify_export instead.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (example,), buf, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: _AXES, OUTPUT_NAME: _AXES}, opset_version=opset,
            do_constant_folding=True, dynamo=False,
        )
    return buf.getvalue()


def _with_metadata(data: bytes, info: ModelInfo) -> onnx.ModelProto:
    model = onnx.load_from_string(data)
    existing = {p.key: p.value for p in model.metadata_props}
    onnx.helper.set_model_props(model, {**existing, **info.to_props()})
    model.producer_name = "cyclegan-cli"
    model.producer_version = info.version
    model.doc_string = (f"CycleGAN generator {info.domain_from} -> {info.domain_to} "
                        f"({info.architecture}, {info.precision})")
    onnx.checker.check_model(model)
    return model


def export_generator(net: nn.Module, info: ModelInfo, path: str | os.PathLike, *,
                     opset: int = DEFAULT_OPSET, fp16: bool = False) -> Path:
    """Write ``net`` as an ONNX file at ``path`` (atomically) and return the path.

    With ``fp16=True`` the file computes in float16 (see the module docstring) and
    ``info.precision`` is stored as ``fp16``; the input and output stay float32. ``net`` itself
    is not modified (a CPU float32 copy in eval mode is exported).
    """
    path = Path(path)
    work = copy.deepcopy(net).float().cpu().eval()
    channels = input_channels(work)
    height, width = default_sizes(info.size_multiple)[0]
    example = torch.zeros(1, channels, height, width)
    if fp16:
        work = _Float16Graph(work).eval()
        info = replace(info, precision="fp16")
    try:
        with torch.no_grad():
            data = _to_onnx_bytes(work, example, opset)
        model = _with_metadata(data, info)
    except ExportError:
        raise
    except Exception as exc:  # exporter and checker raise many types
        raise ExportError(f"could not export {info.architecture} to ONNX: "
                          f"{type(exc).__name__}: {exc}") from exc
    with atomic_open(path, "wb") as fh:
        fh.write(model.SerializeToString())
    return path


def _file_precision(model: onnx.ModelProto) -> str:
    props = {p.key: p.value for p in model.metadata_props}
    return props.get("cyclegan_cli.precision", "fp32")


def verify_export(net: nn.Module, path: str | os.PathLike, sizes: list[Size] | None = None,
                  tol: float | None = None, *, seed: int = 0) -> float:
    """Run the file in ONNX Runtime (CPU) and ``net`` in torch on the same random inputs.

    Each (height, width) in ``sizes`` (default: two sizes from the file's size multiple, see
    :func:`default_sizes`) is tried; the first with batch 1, the others with batch 2, so that
    dynamic batch and spatial axes are both exercised. Returns the largest absolute difference
    and raises :class:`ExportError` when it exceeds ``tol`` (default ``1e-4``, or ``2e-2`` for a
    file whose metadata says ``precision=fp16``).
    """
    import onnxruntime as ort  # imported here: a heavy import only export needs

    path = Path(path)
    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    precision = _file_precision(model)
    if tol is None:
        tol = FP16_TOL if precision == "fp16" else FP32_TOL
    if sizes is None:
        sizes = default_sizes(int(props.get("cyclegan_cli.size_multiple", "4")))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    work = copy.deepcopy(net).float().cpu().eval()
    channels = input_channels(work)
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for i, (height, width) in enumerate(sizes):
        x = torch.rand(1 if i == 0 else 2, channels, height, width, generator=gen) * 2 - 1
        with torch.no_grad():
            expected = work(x).numpy()
        got = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
        if got.shape != expected.shape:
            raise ExportError(f"{path}: ONNX output shape {got.shape} differs from torch "
                              f"{expected.shape} at input {tuple(x.shape)}")
        diff = float(np.max(np.abs(got.astype(np.float32) - expected)))
        if not math.isfinite(diff):
            diff = math.inf
        worst = max(worst, diff)
    if worst > tol:
        raise ExportError(f"{path}: ONNX Runtime output differs from torch by {worst:.3g} "
                          f"(allowed {tol:g}, {precision}); the export is wrong")
    return worst


def export_and_verify(net: nn.Module, info: ModelInfo, path: str | os.PathLike, *,
                      fp16: bool = False, verify: bool = True, opset: int = DEFAULT_OPSET,
                      sizes: list[Size] | None = None, int8: bool = False,
                      calibration_images: list[np.ndarray] | None = None,
                      calibration_size: int = 256) -> ExportResult:
    """:func:`export_generator` (plus the ``-fp16`` twin when asked) then
    :func:`verify_export` on each file. Unverified differences are reported as ``nan``.

    With ``int8`` a statically quantized ``-int8`` twin is written too (see
    :func:`cyclegan_cli.export.quantize.quantize_int8`; calibration defaults to photo crops of
    ``calibration_size``) and its PSNR against the fp32 file is measured (see :func:`add_int8`).
    """
    remove_stale_temporaries([Path(path), fp16_path_for(path), twin_path(path, "int8")])
    path = export_generator(net, info, path, opset=opset)
    sizes = sizes or default_sizes(info.size_multiple)
    diff = verify_export(net, path, sizes) if verify else math.nan
    result = ExportResult(path=path, direction=info.direction, max_abs_diff=diff)
    if fp16:
        result.fp16_path = export_generator(net, info, fp16_path_for(path), opset=opset,
                                            fp16=True)
        result.fp16_diff = verify_export(net, result.fp16_path, sizes) if verify else math.nan
    if int8:
        add_int8(result, calibration_images=calibration_images, calibration_size=calibration_size,
                 verify=verify)
    return result


def add_int8(result: ExportResult, *, calibration_images: list[np.ndarray] | None = None,
             calibration_size: int = 256, verify: bool = True) -> ExportResult:
    """Quantize ``result.path`` to its ``-int8`` twin and fill ``int8_path``, ``int8_report``
    and ``int8_psnr`` (its mean; ``nan`` unless ``verify``); a worst image under 30 dB adds a
    text naming it to ``result.warnings``."""
    from cyclegan_cli.export.quantize import (
        int8_path_for,
        int8_report,
        psnr_warning,
        quantize_int8,
    )

    result.int8_path = quantize_int8(result.path, int8_path_for(result.path),
                                     calibration_images, calibration_size)
    if not verify:
        result.int8_psnr = math.nan
        return result
    report = result.int8_report = int8_report(result.path, result.int8_path)
    result.int8_psnr = report.mean
    worst_name, worst = report.worst
    warning = psnr_warning(worst, what=worst_name)
    if warning:
        result.warnings.append(f"{result.int8_path.name}: {warning}")
    return result
