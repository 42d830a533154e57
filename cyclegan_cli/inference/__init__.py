"""Torch-free inference: load a generator (ONNX file, or a run directory with torch) and
translate arrays and PIL images of any size.

>>> t = load_model("horse2zebra.onnx", direction="AtoB")
>>> zebra = t.translate_image(Image.open("horse.jpg"))

Imports numpy, pillow, onnx, onnxruntime and the standard library only; torch is imported
lazily by the ``torch`` backend. The names below are loaded on first use, so that the parts
which only read model files (``catalog``, ``resolve``) work in an install without ONNX
Runtime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "INPUT_NAME": "metadata",
    "OUTPUT_NAME": "metadata",
    "ModelInfo": "metadata",
    "image_to_array": "imageops",
    "split_channels": "imageops",
    "best_providers": "session",
    "make_session": "session",
    "session_info": "session",
    "PROVIDER_NAMES": "providers",
    "ProviderError": "providers",
    "available_providers": "providers",
    "translate_tiled": "tiling",
    "MAX_PIXELS": "limits",
    "MIN_TILE": "limits",
    "check_tile": "limits",
    "Backend": "translator",
    "Translator": "translator",
    "check_direction": "translator",
    "load_model": "translator",
    "onnx_backend": "translator",
}
__all__ = [  # the same names as _EXPORTS (a test checks)
    "Backend",
    "INPUT_NAME",
    "MAX_PIXELS",
    "MIN_TILE",
    "ModelInfo",
    "OUTPUT_NAME",
    "PROVIDER_NAMES",
    "ProviderError",
    "Translator",
    "available_providers",
    "best_providers",
    "check_direction",
    "check_tile",
    "image_to_array",
    "load_model",
    "make_session",
    "onnx_backend",
    "session_info",
    "split_channels",
    "translate_tiled",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:
    from cyclegan_cli.inference.imageops import image_to_array, split_channels
    from cyclegan_cli.inference.limits import MAX_PIXELS, MIN_TILE, check_tile
    from cyclegan_cli.inference.metadata import INPUT_NAME, OUTPUT_NAME, ModelInfo
    from cyclegan_cli.inference.providers import (
        PROVIDER_NAMES,
        ProviderError,
        available_providers,
    )
    from cyclegan_cli.inference.session import best_providers, make_session, session_info
    from cyclegan_cli.inference.tiling import translate_tiled
    from cyclegan_cli.inference.translator import (
        Backend,
        Translator,
        check_direction,
        load_model,
        onnx_backend,
    )
