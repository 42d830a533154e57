"""Preprocessing of uint8 HxWx3 arrays: a deterministic resize, then random crop / flip / pad.

Split in two so the deterministic part can be cached: ``prepare`` (resize, the same every
epoch) and ``augment`` (random crop and flip drawn from a per-sample generator, or a centred,
unflipped version when no generator is given — used for sample grids).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")


def resize(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bicubic resize of an HxWx3 uint8 array (no-op when the size already matches)."""
    if arr.shape[1] == width and arr.shape[0] == height:
        return arr
    img = Image.fromarray(arr).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(img)


def pad_to_multiple(arr: np.ndarray, multiple: int) -> np.ndarray:
    """Reflect-pad bottom/right so height and width are multiples of ``multiple``."""
    h, w = arr.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return arr
    mode = "reflect" if ph < h and pw < w else "symmetric"
    return np.pad(arr, ((0, ph), (0, pw), (0, 0)), mode=mode)


def _crop(arr: np.ndarray, size: int, rng: np.random.Generator | None) -> np.ndarray:
    h, w = arr.shape[:2]
    if h < size or w < size:  # too small to crop: scale up the short side first
        scale = size / min(h, w)
        arr = resize(arr, max(size, round(w * scale)), max(size, round(h * scale)))
        h, w = arr.shape[:2]
    if rng is None:
        top, left = (h - size) // 2, (w - size) // 2
    else:
        top, left = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
    return arr[top : top + size, left : left + size]


@dataclass(frozen=True)
class Preprocessor:
    """The training-time image pipeline for one preprocessing mode."""

    mode: str = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True
    size_multiple: int = 4

    def __post_init__(self) -> None:
        if self.mode not in PREPROCESS_MODES:
            raise ValueError(
                f"unknown preprocess mode {self.mode!r}; "
                f"choose one of {', '.join(PREPROCESS_MODES)}"
            )

    @property
    def draft_size(self) -> int | None:
        """Smallest side a JPEG may be decoded at (fast reduced-scale decode), if any."""
        return self.load_size if self.mode in ("resize_and_crop",) else None

    def prepare(self, arr: np.ndarray) -> np.ndarray:
        """The deterministic resize of the mode (cacheable)."""
        if self.mode == "resize_and_crop":
            return resize(arr, self.load_size, self.load_size)
        if self.mode in ("scale_width", "scale_width_and_crop"):
            h, w = arr.shape[:2]
            height = max(round(self.load_size * h / w), self.crop_size)
            return resize(arr, self.load_size, height)
        return arr

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of the training sample made from a width x height image."""
        if self.mode in ("resize_and_crop", "crop", "scale_width_and_crop"):
            return self.crop_size, self.crop_size
        if self.mode == "scale_width":
            width, height = self.load_size, max(round(self.load_size * height / width),
                                                self.crop_size)
        m = self.size_multiple
        return -(-width // m) * m, -(-height // m) * m

    def augment(self, arr: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """Random crop / flip / pad of a prepared array (centred and unflipped when rng is None)."""
        if self.mode in ("resize_and_crop", "crop", "scale_width_and_crop"):
            arr = _crop(arr, self.crop_size, rng)
        else:  # scale_width, none: keep the whole image, padded to what the network needs
            arr = pad_to_multiple(arr, self.size_multiple)
        if self.flip and rng is not None and rng.random() < 0.5:
            arr = arr[:, ::-1]
        if arr.flags.c_contiguous and arr.flags.writeable:
            return arr
        return np.array(arr, order="C")  # a writable copy (decoded images are read-only)

    def augment_pair(self, a: np.ndarray, b: np.ndarray, rng: np.random.Generator | None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`augment` of both images of a pair with the same draws (the same crop, the
        same flip), so they stay aligned. ValueError when their sizes differ."""
        if a.shape[:2] != b.shape[:2]:
            raise ValueError(f"the images of a pair differ in size: {a.shape[1]}×{a.shape[0]} "
                             f"against {b.shape[1]}×{b.shape[0]}")
        if rng is None:
            return self.augment(a, None), self.augment(b, None)
        state = rng.bit_generator.state
        out_a = self.augment(a, rng)
        rng.bit_generator.state = state  # replay the draws for B
        return out_a, self.augment(b, rng)

    def __call__(self, arr: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        return self.augment(self.prepare(arr), rng)
