"""The built-in demo dataset, made at run time from photographs that scikit-image ships.

Domain A holds random crops of the photos; domain B holds *other* random crops with a fixed
warm "golden hour" colour grade applied, so the two folders are unpaired. A held-out test split
keeps the pairs: ``testA`` and ``testB_true`` (the graded ground truth of each ``testA`` image),
so a trained A→B generator can be scored against the true grade.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from cyclegan_cli.atomic import atomic_open, atomic_write_text
from cyclegan_cli.errors import DataError

# Colour photographs in skimage/data (files installed with the package, no download needed).
DEMO_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
)
DEMO_SPLIT = ("trainA", "trainB", "testA", "testB_true")


def golden_hour(rgb: np.ndarray) -> np.ndarray:
    """A fixed warm "golden hour" grade of an HxWx3 uint8 image (per pixel, deterministic).

    Warm white balance (red up, blue down), lifted shadows with a gentle S-curve, an orange
    tint in the highlights and slightly richer saturation.
    """
    x = rgb.astype(np.float32) / 255.0
    x = x * np.array([1.10, 1.00, 0.78], dtype=np.float32)  # white balance towards warm
    x = np.clip(x, 0.0, 1.0)
    x = 0.04 + 0.92 * (x - 0.35 * x * (1 - x) * (1 - 2 * x))  # lifted blacks, soft S-curve
    luma = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    tint = np.array([0.10, 0.04, -0.06], dtype=np.float32)
    x = x + luma[..., None] ** 2 * tint  # golden highlights
    x = luma[..., None] + 1.15 * (x - luma[..., None])  # a little more saturation
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def _photos() -> list[np.ndarray]:
    try:
        import skimage
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise DataError("the demo needs scikit-image (pip install scikit-image)") from exc
    folder = Path(skimage.__file__).parent / "data"
    photos = []
    for name in DEMO_PHOTOS:
        path = folder / name
        if path.exists():
            with Image.open(path) as img:
                photos.append(np.asarray(img.convert("RGB")))
    if not photos:
        raise DataError(f"no sample photographs found in {folder}")
    return photos


def _random_crops(
    photos: list[np.ndarray], n: int, size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """``n`` square crops (random photo, scale 20-60 % of the short side, random flip)."""
    crops = []
    for _ in range(n):
        photo = photos[int(rng.integers(len(photos)))]
        h, w = photo.shape[:2]
        side = int(min(h, w) * rng.uniform(0.2, 0.6))
        top, left = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
        crop = Image.fromarray(photo[top : top + side, left : left + side])
        crop = crop.resize((size, size), Image.Resampling.LANCZOS)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        crops.append(np.asarray(crop))
    return crops


def _save(folder: Path, images: list[np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, arr in enumerate(images):
        with atomic_open(folder / f"{i:04d}.png", "wb") as fh:
            Image.fromarray(arr).save(fh, format="PNG")


def make_demo_dataset(
    root: str | Path, size: int = 64, n_train: int = 200, n_test: int = 20, seed: int = 0
) -> Path:
    """Write the demo dataset under ``root`` (trainA, trainB, testA, testB_true, README.txt).

    A and B training crops are drawn independently, so no B image is the grade of an A image.
    Returns ``root``. The same arguments always give the same files.
    """
    if size < 8 or n_train < 1 or n_test < 0:
        raise DataError("demo dataset needs size >= 8 and at least one training image")
    root = Path(root)
    rng = np.random.default_rng(seed)
    photos = _photos()
    train_a = _random_crops(photos, n_train, size, rng)
    train_b = [golden_hour(c) for c in _random_crops(photos, n_train, size, rng)]
    test_a = _random_crops(photos, n_test, size, rng)
    _save(root / "trainA", train_a)
    _save(root / "trainB", train_b)
    _save(root / "testA", test_a)
    _save(root / "testB_true", [golden_hour(c) for c in test_a])
    atomic_write_text(
        root / "README.txt",
        "cyclegan-cli demo data, made from scikit-image's sample photographs.\n"
        f"trainA: {n_train} random {size}x{size} crops.\n"
        f"trainB: {n_train} other crops with a warm 'golden hour' colour grade (unpaired).\n"
        f"testA / testB_true: {n_test} held-out crops and their graded ground truth (paired).\n",
    )
    return root
