"""The built-in demo dataset, made at run time from photographs that scikit-image ships.

The photographs are split three ways, so that no photograph appears in two splits: domain A
holds random crops of one set, domain B random crops of *another* set with a fixed, invertible
warm "golden hour" colour grade applied (so the two folders are unpaired), and the test split
holds crops of held-out photographs with their graded ground truth: ``testA`` and
``testB_true``. A trained A→B generator is scored against the true grade (and B→A against
``testA``, since the grade is invertible).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from cyclegan_cli.atomic import atomic_open, atomic_write_text
from cyclegan_cli.errors import DataError

# Colour photographs in skimage/data (files installed with the package, no download needed),
# split by photograph: trainA, trainB and the held-out test photographs share none.
DEMO_PHOTOS_A = ("astronaut.png", "motorcycle_left.png", "hubble_deep_field.jpg", "ihc.png")
DEMO_PHOTOS_B = ("rocket.jpg", "motorcycle_right.png", "retina.jpg")
DEMO_PHOTOS_TEST = ("chelsea.png", "coffee.png")
DEMO_PHOTOS = DEMO_PHOTOS_A + DEMO_PHOTOS_B + DEMO_PHOTOS_TEST
# The "wide" training set of the shipped models: the colour photographs above plus greyscale
# ones (neutral tones from black to white, which the colour ones lack), each domain its own.
WIDE_PHOTOS_A = DEMO_PHOTOS_A + ("camera.png", "brick.png", "coins.png", "page.png")
WIDE_PHOTOS_B = DEMO_PHOTOS_B + ("grass.png", "gravel.png", "moon.png", "clock_motion.png")
CROP_SCALE = (0.2, 0.6)  # crop side as a fraction of the photo's short side
WIDE_CROP_SCALE = (0.2, 1.0)  # up to the whole photo, as the model is used
DEMO_SPLIT = ("trainA", "trainB", "testA", "testB_true")

# The grade: per-channel power curves (warm white balance), a soft S-curve, lifted blacks.
_GAMMA = np.array([0.72, 0.95, 1.38], dtype=np.float64)
_S, _LIFT, _SPAN = 0.35, 0.035, 0.93


def _s_curve(x: np.ndarray) -> np.ndarray:
    """A monotone bijection of [0, 1] that adds contrast (slope > 0 everywhere for _S < 2)."""
    return x - _S * x * (1 - x) * (1 - 2 * x)


def golden_hour(rgb: np.ndarray) -> np.ndarray:
    """A fixed warm "golden hour" grade of an HxWx3 uint8 image (per pixel, deterministic).

    Each channel goes through a strictly increasing curve from [0, 1] onto [0.035, 0.965]:
    a power curve (red lifted, blue lowered: a warm white balance), a soft S-curve and lifted
    blacks. Nothing clips, so the grade is invertible (``golden_hour_inverse``) up to the
    rounding to 8 bits.
    """
    x = rgb.astype(np.float64) / 255.0
    y = _LIFT + _SPAN * _s_curve(x ** _GAMMA)
    return np.rint(y * 255.0).astype(np.uint8)


def golden_hour_inverse(rgb: np.ndarray) -> np.ndarray:
    """The inverse of ``golden_hour`` (exact up to 8-bit rounding; values outside its range
    clamp to the ends)."""
    grid = np.linspace(0.0, 1.0, 4097)
    y = (np.clip(rgb.astype(np.float64) / 255.0, _LIFT, _LIFT + _SPAN) - _LIFT) / _SPAN
    s_inv = np.interp(y, _s_curve(grid), grid)  # _s_curve is increasing: invert by lookup
    x = np.clip(s_inv, 0.0, 1.0) ** (1.0 / _GAMMA)
    return np.rint(x * 255.0).astype(np.uint8)


def _photos(names: tuple[str, ...] = DEMO_PHOTOS) -> list[np.ndarray]:
    try:
        import skimage
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise DataError("the demo needs scikit-image (pip install scikit-image)") from exc
    folder = Path(skimage.__file__).parent / "data"
    photos = []
    for name in names:
        path = folder / name
        if path.exists():
            with Image.open(path) as img:
                photos.append(np.asarray(img.convert("RGB")))
    if not photos:
        raise DataError(f"no sample photographs found in {folder}")
    return photos


def _random_crops(
    photos: list[np.ndarray], n: int, size: int, rng: np.random.Generator,
    scale: tuple[float, float] = CROP_SCALE,
) -> list[np.ndarray]:
    """``n`` square crops (random photo, side a random ``scale`` of the short side, random
    flip)."""
    crops = []
    for _ in range(n):
        photo = photos[int(rng.integers(len(photos)))]
        h, w = photo.shape[:2]
        side = int(min(h, w) * rng.uniform(*scale))
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
    root: str | Path, size: int = 64, n_train: int = 200, n_test: int = 20, seed: int = 0,
    transform: Callable[[np.ndarray], np.ndarray] = golden_hour,
    description: str = "a warm 'golden hour' colour grade", wide: bool = False,
    paired: bool = False,
) -> Path:
    """Write the demo dataset under ``root`` (trainA, trainB, testA, testB_true, README.txt).

    A, B and test crops come from disjoint sets of photographs, so no B image is the
    ``transform`` of an A image and the test photographs are never seen in training.
    ``transform`` (default: the golden-hour grade) makes domain B; the known-answer tasks of
    :mod:`cyclegan_cli.data.tasks` pass theirs. Returns ``root``. The same arguments always
    give the same files. ``wide`` trains on more photographs (:data:`WIDE_PHOTOS_A`,
    :data:`WIDE_PHOTOS_B`) and larger crops (:data:`WIDE_CROP_SCALE`); the test split is the
    same either way. ``paired``: trainB holds the ``transform`` of each trainA crop, under the
    same file name (pix2pix's two-folder layout), instead of crops of other photographs.
    """
    if size < 8 or n_train < 1 or n_test < 0:
        raise DataError("demo dataset needs size >= 8 and at least one training image")
    root = Path(root)
    rng = np.random.default_rng(seed)
    photos_a, photos_b = (WIDE_PHOTOS_A, WIDE_PHOTOS_B) if wide else (DEMO_PHOTOS_A,
                                                                      DEMO_PHOTOS_B)
    scale = WIDE_CROP_SCALE if wide else CROP_SCALE
    train_a = _random_crops(_photos(photos_a), n_train, size, rng, scale)
    others = _random_crops(_photos(photos_b), n_train, size, rng, scale)  # (drawn either
    train_b = [transform(c) for c in (train_a if paired else others)]  # way: same test split)
    test_a = _random_crops(_photos(DEMO_PHOTOS_TEST), n_test, size, rng)
    _save(root / "trainA", train_a)
    _save(root / "trainB", train_b)
    _save(root / "testA", test_a)
    _save(root / "testB_true", [transform(c) for c in test_a])
    atomic_write_text(
        root / "README.txt",
        "cyclegan-cli demo data, made from scikit-image's sample photographs.\n"
        f"trainA: {n_train} random {size}x{size} crops ({scale[0]:.0%}-{scale[1]:.0%} of the "
        f"short side) of {', '.join(photos_a)}.\n"
        + (f"trainB: the trainA crops with {description} (paired: same file names).\n"
           if paired else f"trainB: {n_train} crops of {', '.join(photos_b)} with "
           f"{description} (unpaired).\n")
        + f"testA / testB_true: {n_test} crops of the held-out {', '.join(DEMO_PHOTOS_TEST)}"
        " and their true domain-B version (paired).\n",
    )
    return root


def write_sample_photos(folder: str | Path, names: tuple[str, ...] = DEMO_PHOTOS_TEST
                        ) -> list[Path]:
    """Save scikit-image's sample photographs ``names`` as RGB PNGs in ``folder``.

    The default is the demo's held-out photographs, which no shipped model was trained on.
    Existing files are replaced atomically. Returns the written paths.
    """
    unknown = sorted(set(names) - set(DEMO_PHOTOS))
    if unknown:
        raise DataError(f"unknown sample photo(s): {', '.join(unknown)}; "
                        f"choose from {', '.join(DEMO_PHOTOS)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, arr in zip(names, _photos(names), strict=True):
        path = folder / (Path(name).stem + ".png")
        with atomic_open(path, "wb") as fh:
            Image.fromarray(arr).save(fh, format="PNG")
        written.append(path)
    return written
