"""Known-answer translation tasks: fixed transforms of photographs, for measuring training.

Each :class:`Task` maps an HxWx3 uint8 image to its "domain B" version, deterministically, and
says what kind of change it is. ``make_task_dataset`` builds an
unpaired dataset from one: A and B are crops of *different* photographs, so a model can only
learn the change itself, and the held-out crops come with their true B version (B→A is scored
against the original crops; ``inverse`` says where an exact answer exists). The suite spans
global colour curves, a white balance shift, channel mixing, local contrast, a texture on the
pixel grid, a mix, and a blur (whose way back, deblurring, has no exact answer: the paired
benchmark's task); ``TASKS`` is the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from cyclegan_cli.data.demo import golden_hour, golden_hour_inverse, make_demo_dataset

Transform = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # what changes, in a few words
    forward: Transform  # HxWx3 uint8 -> HxWx3 uint8, deterministic
    inverse: Transform | None = None  # exact up to 8-bit rounding, where one exists


def _unit(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) / 255.0


def _bytes(x: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


# white balance: per-channel gains in linear light (a cool, slightly green cast); gains <= 1,
# so nothing clips and the inverse is exact
_WB_GAINS = np.array([0.70, 0.92, 1.0])


def white_balance(rgb: np.ndarray) -> np.ndarray:
    return _bytes((_unit(rgb) ** 2.2 * _WB_GAINS) ** (1 / 2.2))


def white_balance_inverse(rgb: np.ndarray) -> np.ndarray:
    return _bytes(np.clip(_unit(rgb) ** 2.2 / _WB_GAINS, 0.0, 1.0) ** (1 / 2.2))


# channel mixing: a fixed 3x3 matrix with rows of positive weights summing to 1 (stays in
# range; invertible, determinant 0.19)
_MIX = np.array([[0.62, 0.30, 0.08],
                 [0.10, 0.70, 0.20],
                 [0.22, 0.08, 0.70]])


def channel_mix(rgb: np.ndarray) -> np.ndarray:
    return _bytes(_unit(rgb) @ _MIX.T)


def channel_mix_inverse(rgb: np.ndarray) -> np.ndarray:
    return _bytes(_unit(rgb) @ np.linalg.inv(_MIX).T)


def local_contrast(rgb: np.ndarray) -> np.ndarray:
    """Unsharp mask: radius 2 px, amount 80 % (local contrast and sharpness up)."""
    blurred = np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(2.0)))
    return _bytes(_unit(rgb) + 0.8 * (_unit(rgb) - _unit(blurred)))


# a canvas weave: a fixed pattern with a 4-pixel period, anchored at the image's top-left
# corner, multiplying the image by 0.88-1.0 (a texture that follows the pixel grid)
_WEAVE = np.array([[1.00, 0.96, 0.90, 0.96],
                   [0.96, 0.88, 0.94, 1.00],
                   [0.90, 0.94, 1.00, 0.94],
                   [0.96, 1.00, 0.94, 0.88]])


def canvas(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    weave = np.tile(_WEAVE, (h // 4 + 1, w // 4 + 1))[:h, :w, None]
    return _bytes(_unit(rgb) * weave)


def canvas_inverse(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    weave = np.tile(_WEAVE, (h // 4 + 1, w // 4 + 1))[:h, :w, None]
    return _bytes(_unit(rgb) / weave)


def faded_print(rgb: np.ndarray) -> np.ndarray:
    """A mix: white balance towards cyan, softer local contrast (blur 1 px at 60 %), raised
    blacks and lowered whites (a faded print)."""
    x = _unit(white_balance(rgb))
    soft = _unit(np.asarray(Image.fromarray(_bytes(x)).filter(ImageFilter.GaussianBlur(1.0))))
    x = 0.4 * x + 0.6 * soft
    return _bytes(0.08 + 0.82 * x)


def soft_focus(rgb: np.ndarray) -> np.ndarray:
    """A Gaussian blur of radius 1.5 px: detail is lost, so B→A (sharpening it back) has no
    exact answer; a regression towards the mean stays soft where a sharp guess is right."""
    return np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(1.5)))


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("golden_hour", "global colour curves (warm grade, S-curve)", golden_hour,
         golden_hour_inverse),
    Task("white_balance", "white balance shift (cool cast)", white_balance,
         white_balance_inverse),
    Task("channel_mix", "channel mixing (3x3 colour matrix)", channel_mix,
         channel_mix_inverse),
    Task("local_contrast", "local contrast and sharpness (unsharp mask)", local_contrast),
    Task("canvas", "texture on the pixel grid (canvas weave)", canvas, canvas_inverse),
    Task("faded_print", "a mix: colour cast, softness, faded tones", faded_print),
    Task("soft_focus", "lost detail (Gaussian blur 1.5 px; B→A is deblurring)", soft_focus),
)}


# the CycleGAN suite of docs/benchmarks.md (benchmarks/quality.py --suite): the unpaired tasks
# (soft_focus is the paired benchmark's, benchmarks/paired.py)
SUITE = ("golden_hour", "white_balance", "channel_mix", "local_contrast", "canvas",
         "faded_print")


def task(name: str) -> Task:
    """The task called ``name`` (ValueError naming the known ones otherwise)."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASKS)}") from None


def make_task_dataset(root: str | Path, name: str, size: int = 64, n_train: int = 400,
                      n_test: int = 20, seed: int = 0, wide: bool = False,
                      paired: bool = False) -> Path:
    """The demo dataset's photographs and splits with task ``name`` making domain B
    (``wide``: more photographs and larger crops; ``paired``: trainB is the task applied to
    the trainA crops, same names; see ``make_demo_dataset``)."""
    t = task(name)
    return make_demo_dataset(root, size=size, n_train=n_train, n_test=n_test, seed=seed,
                             transform=t.forward, description=f"the {t.name} task: {t.kind}",
                             wide=wide, paired=paired)
