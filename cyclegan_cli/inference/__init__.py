"""Torch-free inference: load a generator (ONNX file, or a run directory with torch) and
translate arrays and PIL images of any size.

>>> t = load_model("horse2zebra.onnx", direction="AtoB")
>>> zebra = t.translate_image(Image.open("horse.jpg"))

Imports numpy, pillow, onnxruntime and the standard library only; torch is imported lazily by
the ``torch`` backend.
"""

from cyclegan_cli.inference.imageops import image_to_array, split_channels
from cyclegan_cli.inference.metadata import INPUT_NAME, OUTPUT_NAME, ModelInfo
from cyclegan_cli.inference.session import best_providers, make_session, session_info
from cyclegan_cli.inference.tiling import translate_tiled
from cyclegan_cli.inference.translator import (
    MAX_PIXELS,
    Backend,
    Translator,
    check_direction,
    load_model,
    onnx_backend,
)

__all__ = [
    "INPUT_NAME",
    "MAX_PIXELS",
    "OUTPUT_NAME",
    "Backend",
    "ModelInfo",
    "Translator",
    "best_providers",
    "check_direction",
    "image_to_array",
    "load_model",
    "make_session",
    "onnx_backend",
    "session_info",
    "split_channels",
    "translate_tiled",
]
