"""Finding and decoding image files: every supported file becomes an HxWx3 uint8 RGB array.

EXIF orientation is honoured; grayscale, palette, RGBA/LA (composited on white), CMYK and 16-bit
images are converted to 8-bit RGB. Anything that cannot be decoded raises
:class:`~cyclegan_cli.errors.ImageReadError` naming the file and the reason.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cyclegan_cli.errors import DataError, ImageReadError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
DEFAULT_MAX_MEGAPIXELS = 179.0  # PIL's own decompression-bomb error threshold
MEGAPIXELS_ENV = "CGAN_MAX_MEGAPIXELS"
# Our own size check (below) replaces PIL's, so that the limit can be raised on request and
# the message can say how.
Image.MAX_IMAGE_PIXELS = None


def max_megapixels() -> float:
    """The largest image accepted, in megapixels: $CGAN_MAX_MEGAPIXELS (set by
    ``cgan --max-megapixels``; inherited by data-loading workers), else 179."""
    try:
        return float(os.environ.get(MEGAPIXELS_ENV) or DEFAULT_MAX_MEGAPIXELS)
    except ValueError:
        return DEFAULT_MAX_MEGAPIXELS


def check_size(path: Path, width: int, height: int) -> None:
    """ImageReadError for an image over :func:`max_megapixels` (checked from the header,
    before anything is decoded)."""
    limit = max_megapixels()
    mp = width * height / 1e6
    if mp > limit:
        need = int(mp) + 1
        raise ImageReadError(path, f"{width}×{height} pixels ({mp:.0f} MP) is over the "
                                   f"{limit:g} MP limit that guards against decompression "
                                   f"bombs; to accept it, run cgan --max-megapixels {need} … "
                                   f"(or set {MEGAPIXELS_ENV}={need})")


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """All image files under ``folder`` (recursive, sorted, hidden files skipped).

    Raises DataError for a missing folder, a file given instead of a folder, or a folder
    without images — before any training starts.
    """
    root = Path(folder)
    if not root.exists():
        raise DataError(f"folder not found: {root}")
    if not root.is_dir():
        raise DataError(f"not a folder: {root}")
    files = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not files:
        exts = ", ".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
        raise DataError(f"no images ({exts}) in {root}")
    return files


def _high_bit_to_8(img: Image.Image) -> Image.Image:
    """16/32-bit integer or float single-channel images, scaled to 8-bit 'L'."""
    arr = np.asarray(img)
    if arr.dtype.kind == "f":
        arr = np.nan_to_num(arr, nan=0.0)  # one NaN must not turn a 0..1 image black
        arr = np.clip(arr, 0.0, 1.0) * 255.0 if arr.max(initial=0) <= 1.0 else np.clip(arr, 0, 255)
    elif arr.dtype.itemsize > 1:
        top = np.iinfo(arr.dtype).max
        if arr.dtype.kind == "i" and arr.min(initial=0) >= 0 and arr.max(initial=0) <= 65535:
            top = 65535  # mode "I" holding 16-bit data (Pillow < 10.3 opens 16-bit PNGs so)
        arr = np.clip(arr.astype(np.float64), 0.0, None) / (top / 255.0)
    return Image.fromarray(np.rint(np.clip(arr, 0, 255)).astype(np.uint8), "L")


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB (alpha composited over white)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return _high_bit_to_8(img).convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def open_image(path: str | os.PathLike[str], draft_size: int | None = None) -> Image.Image:
    """Open and fully decode an image with EXIF orientation applied.

    ``draft_size`` lets JPEGs decode at a reduced scale whose smaller side stays at least that
    large (much faster for big photos that are resized anyway).
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                check_size(path, img.width, img.height)
                if draft_size and img.format == "JPEG":
                    scale = min(img.width, img.height) / draft_size
                    if scale >= 2:
                        img.draft("RGB", (int(img.width / scale), int(img.height / scale)))
                img.load()
                return ImageOps.exif_transpose(img)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(path, "not an image or an unsupported format") from None
    except Image.DecompressionBombError:
        raise ImageReadError(path, "too large (over PIL's decompression-bomb limit)") from None
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc) or type(exc).__name__
        if "truncated" in reason.lower():
            reason = "truncated or corrupt file"
        raise ImageReadError(path, reason) from None


def load_rgb(path: str | os.PathLike[str], draft_size: int | None = None) -> np.ndarray:
    """Decode ``path`` to a contiguous HxWx3 uint8 RGB array."""
    img = open_image(path, draft_size)
    try:
        arr = np.asarray(to_rgb(img), dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise ImageReadError(Path(path), f"cannot convert {img.mode} to RGB ({exc})") from None
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageReadError(Path(path), f"unexpected decoded shape {arr.shape}")
    return np.ascontiguousarray(arr)


def probe_image(path: str | os.PathLike[str]) -> tuple[int, int, str]:
    """(width, height, mode) read from the header only; raises ImageReadError if unreadable."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                check_size(path, img.width, img.height)
                return img.width, img.height, img.mode
    except UnidentifiedImageError:
        raise ImageReadError(path, "not an image or an unsupported format") from None
    except Image.DecompressionBombError:
        raise ImageReadError(path, "too large (over PIL's decompression-bomb limit)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageReadError(path, str(exc) or type(exc).__name__) from None
