"""Pre- and post-processing shared by every backend: arrays <-> model tensors, padding, modes.

Model tensors are NCHW float32 RGB in [-1, 1]; images are HxWx3 uint8. Imports numpy and
pillow only.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from cyclegan_cli.errors import DataError

_ALPHA_MODES = {"LA", "La", "PA", "RGBA", "RGBa"}
_INT_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """uint8 as is; uint16 (and other integer types up to 16 bits) scaled to 8 bits; bool to
    0/255. Other types raise DataError."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype in (np.uint16, np.int32, np.int64, np.uint32, np.int16):
        wide = np.clip(arr.astype(np.int64), 0, 65535)
        return ((wide * 255 + 32767) // 65535).astype(np.uint8)
    raise DataError(f"unsupported image array type {arr.dtype}; expected uint8 or uint16")


def split_channels(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """An image array -> (HxWx3 uint8 RGB, HxW uint8 alpha or None).

    Accepts HxW or HxWx1 (gray), HxWx2 (gray + alpha), HxWx3 (RGB) and HxWx4 (RGBA); uint16
    values (alpha too) are scaled to 8 bits, uint8 alpha is returned unchanged.
    """
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise DataError(f"expected an HxW, HxWx1, HxWx3 or HxWx4 image array, got shape "
                        f"{tuple(arr.shape)}")
    arr = to_uint8(arr)
    channels = arr.shape[2]
    alpha = arr[:, :, -1].copy() if channels in (2, 4) else None
    color = arr[:, :, :3] if channels >= 3 else np.repeat(arr[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(color), alpha


def join_channels(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """HxWx3 RGB plus an optional HxW alpha -> HxWx3 or HxWx4."""
    return rgb if alpha is None else np.concatenate([rgb, alpha[:, :, None]], axis=2)


def image_to_array(img: Image.Image) -> np.ndarray:
    """A PIL image of any common mode -> an array :func:`split_channels` accepts.

    L -> HxW; LA/PA/RGBA (and palette images with transparency) keep their alpha; 16-bit
    modes give uint16 HxW; CMYK, YCbCr, LAB, HSV and everything else become RGB.
    """
    mode = img.mode
    if mode in ("RGB", "RGBA", "L", "LA"):
        return np.asarray(img)
    if mode in _INT_MODES:
        return to_uint8(np.asarray(img))
    if mode == "1":
        return np.asarray(img.convert("L"))
    if mode == "F":
        return np.asarray(img.convert("L"))
    if mode in ("P", "PA"):
        transparent = mode == "PA" or "transparency" in img.info or (
            img.palette is not None and img.palette.mode == "RGBA")
        return np.asarray(img.convert("RGBA" if transparent else "RGB"))
    if mode in ("La",):
        return np.asarray(img.convert("LA"))
    if mode in _ALPHA_MODES:
        return np.asarray(img.convert("RGBA"))
    return np.asarray(img.convert("RGB"))


def pad_amounts(length: int, multiple: int, minimum: int = 0) -> tuple[int, int]:
    """(before, after) padding that brings ``length`` to a multiple (and at least ``minimum``),
    split evenly."""
    target = max(length, minimum)
    total = target + (-target % multiple) - length
    return total // 2, total - total // 2


def pad_image(arr: np.ndarray, multiple: int, minimum: int = 0
              ) -> tuple[np.ndarray, tuple[int, int]]:
    """Pad HxWxC on all sides to multiples of ``multiple`` of at least ``minimum`` pixels;
    returns it and the (top, left) offset of the original. Reflects; falls back to symmetric,
    then edge padding, when the image is too small to reflect."""
    h, w = arr.shape[:2]
    top, bottom = pad_amounts(h, multiple, minimum)
    left, right = pad_amounts(w, multiple, minimum)
    if top == bottom == left == right == 0:
        return arr, (0, 0)
    widths = ((top, bottom), (left, right)) + ((0, 0),) * (arr.ndim - 2)
    biggest_h, biggest_w = max(top, bottom), max(left, right)
    if biggest_h < h and biggest_w < w:
        mode = "reflect"
    elif biggest_h <= h and biggest_w <= w:
        mode = "symmetric"
    else:
        mode = "edge"
    return np.pad(arr, widths, mode=mode), (top, left)


def to_model(images: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """N HxWx3 uint8 images (or NxHxWx3) -> NCHW float32 in [-1, 1]."""
    batch = np.stack(images) if isinstance(images, list) else images
    x = batch.astype(np.float32).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x / np.float32(127.5) - np.float32(1.0))


def from_model(batch: np.ndarray) -> np.ndarray:
    """NCHW model output -> NxHxWx3 float32 clipped to [-1, 1]."""
    return np.clip(np.asarray(batch, dtype=np.float32), -1.0, 1.0).transpose(0, 2, 3, 1)


def float_to_uint8(images: np.ndarray) -> np.ndarray:
    """Values in [-1, 1] -> uint8, rounded half to even (as the training samples are)."""
    return np.rint((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
