"""Exporting generators to self-describing ONNX files.

* :func:`export_run`: the generators of a training run directory;
* :func:`export_reference`: a generator checkpoint of the reference PyTorch CycleGAN;
* :func:`export_generator` / :func:`verify_export`: any generator module, and the check that
  ONNX Runtime reproduces it;
* :func:`quantize_int8`: a statically quantized int8 twin of an exported fp32 file.
"""

from __future__ import annotations

from .onnx_export import (
    DEFAULT_OPSET,
    ExportResult,
    add_int8,
    default_sizes,
    export_and_verify,
    export_generator,
    fp16_path_for,
    verify_export,
)
from .quantize import int8_path_for, int8_psnr, photo_crops, quantize_int8
from .reference import (
    detect_layout,
    direction_from_name,
    export_reference,
    load_reference_generator,
)
from .runs import domain_names, export_run

__all__ = [
    "DEFAULT_OPSET",
    "ExportResult",
    "add_int8",
    "default_sizes",
    "detect_layout",
    "direction_from_name",
    "domain_names",
    "export_and_verify",
    "export_generator",
    "export_reference",
    "export_run",
    "fp16_path_for",
    "int8_path_for",
    "int8_psnr",
    "load_reference_generator",
    "photo_crops",
    "quantize_int8",
    "verify_export",
]
