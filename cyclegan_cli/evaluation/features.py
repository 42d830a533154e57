"""Feature vectors from a local ONNX model, for FD/KD (``cgan eval --feature-model``; nothing is
downloaded). These are FID/KID's arithmetic on your features, not the standard FID/KID
(:mod:`cyclegan_cli.evaluation.standard`).

The file maps NCHW float32 RGB images to one feature vector each — e.g. InceptionV3's 2048-d
pool3 output exported to ONNX. Its input size is read from the model when fixed (299 × 299 for
Inception), and the input range from its metadata ``input_range`` ("-1,1" by default, the
convention of the TF Inception used for FID; "0,1" also accepted).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from cyclegan_cli.errors import ModelError


class FeatureModel:
    """An ONNX feature extractor: :meth:`features` turns uint8 images into N x D float64."""

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None,
                 batch: int = 16) -> None:
        import onnxruntime as ort

        from cyclegan_cli.inference.session import best_providers, session_options

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"feature model not found: {self.path} (--feature-model takes "
                             "a local ONNX file; nothing is downloaded)")
        try:
            self.session = ort.InferenceSession(str(self.path), session_options(threads),
                                                providers=best_providers())
        except Exception as exc:
            raise ModelError(f"{self.path}: not a usable ONNX feature model "
                             f"({str(exc).strip().splitlines()[0][:160]})") from exc
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        dims = list(inp.shape)
        if len(dims) != 4 or dims[1] not in (3, "3"):
            raise ModelError(f"{self.path}: expected an NCHW RGB input, found shape {dims}")
        self.size = (dims[3] if isinstance(dims[3], int) else 299,
                     dims[2] if isinstance(dims[2], int) else 299)
        props = self.session.get_modelmeta().custom_metadata_map
        low, high = (float(v) for v in props.get("input_range", "-1,1").split(","))
        self.low, self.high = low, high
        self.batch = batch

    def _prepare(self, images: Sequence[np.ndarray]) -> np.ndarray:
        arrays = [np.asarray(Image.fromarray(img[..., :3]).resize(self.size,
                                                                  Image.Resampling.BILINEAR))
                  for img in images]
        x = np.stack(arrays).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        return np.ascontiguousarray(x * (self.high - self.low) + self.low, dtype=np.float32)

    def features(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """N x D features of HxWx3 uint8 images (any sizes; resized to the model's input)."""
        out = []
        for i in range(0, len(images), self.batch):
            chunk = images[i:i + self.batch]
            y = self.session.run(None, {self.input_name: self._prepare(chunk)})[0]
            out.append(np.asarray(y, dtype=np.float64).reshape(len(chunk), -1))
        return np.concatenate(out) if out else np.zeros((0, 0))
