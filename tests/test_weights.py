"""The models shipped in weights/: they load, carry valid metadata, and beat doing nothing.

The golden_hour pair was trained on the built-in demo data (weights/README.md is its model
card). Held-out here means crops of photographs that no training image came from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cyclegan_cli.data.demo import DEMO_PHOTOS_TEST, _photos, golden_hour, make_demo_dataset
from cyclegan_cli.data.images import list_images, load_rgb
from cyclegan_cli.evaluation.metrics import psnr
from cyclegan_cli.inference import load_model
from cyclegan_cli.inference.catalog import list_models
from cyclegan_cli.inference.metadata import DIRECTIONS
from cyclegan_cli.inference.resolve import SHIPPED_DIR, resolve_model
from tests.conftest import needs_torch

pytestmark = pytest.mark.torchfree  # the shipped models work in an install without torch

NAME = "golden_hour"
DOMAINS = {"AtoB": ("photo", "golden hour"), "BtoA": ("golden hour", "photo")}
MAX_MB = 15
# Least gain in mean PSNR over the untouched input that the shipped files must keep (dB);
# the measured gains are in weights/README.md.
MIN_GAIN_CROPS = 2.0  # on the mean over the crops
MIN_GAIN_PHOTOS = 2.0  # on each whole photo, in each direction


def shipped(direction: str) -> Path:
    return SHIPPED_DIR / f"{NAME}-{direction}.onnx"


@pytest.fixture(scope="module")
def held_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64-pixel crops of the held-out photos (another seed than training), with their truth."""
    return make_demo_dataset(tmp_path_factory.mktemp("held_out"), size=64, n_train=1,
                             n_test=24, seed=1)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_shipped_model_loads_with_valid_metadata(direction: str) -> None:
    path = shipped(direction)
    assert path.is_file(), f"{path} is missing"
    assert path.stat().st_size < MAX_MB * 1e6
    found, backend = resolve_model(NAME, direction)  # --model golden_hour finds it
    assert found.resolve() == path.resolve() and backend == "onnx"
    info = load_model(path, direction=direction).info
    assert info.direction == direction
    assert (info.domain_from, info.domain_to) == DOMAINS[direction]
    assert info.precision == "fp32" and info.input_range == "-1,1"
    assert info.config["global_step"] > 0 and info.config["netG"] == info.architecture
    entries = {(e.name, e.direction): e for e in list_models([SHIPPED_DIR])}
    entry = entries[(NAME, direction)]
    assert not entry.problem


@needs_torch
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_shipped_model_architecture_is_a_known_generator(direction: str) -> None:
    from cyclegan_cli.models import GENERATORS, generator_size_multiple

    info = load_model(shipped(direction), direction=direction).info
    assert info.architecture in GENERATORS
    assert info.size_multiple == generator_size_multiple(info.architecture)


def _pairs(direction: str, held_out: Path) -> tuple[np.ndarray, np.ndarray]:
    files = list_images(held_out / "testA")
    plain = np.stack([load_rgb(f) for f in files])
    graded = np.stack([load_rgb(held_out / "testB_true" / f.name) for f in files])
    return (plain, graded) if direction == "AtoB" else (graded, plain)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_shipped_model_beats_identity_on_held_out_crops(direction: str, held_out: Path) -> None:
    source, truth = _pairs(direction, held_out)
    out = load_model(shipped(direction)).translate_batch(list(source))
    model = np.mean([psnr(o, t) for o, t in zip(out, truth, strict=True)])
    identity = np.mean([psnr(s, t) for s, t in zip(source, truth, strict=True)])
    assert model > identity + MIN_GAIN_CROPS, (model, identity)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("name", DEMO_PHOTOS_TEST)
def test_shipped_model_beats_identity_on_each_whole_held_out_photo(direction: str,
                                                                    name: str) -> None:
    """The quick start's two photos, full size (the model trained on 64-pixel crops): each
    visibly changed the right way, in both directions."""
    translator = load_model(shipped(direction))
    (photo,) = _photos((name,))
    source, truth = ((photo, golden_hour(photo)) if direction == "AtoB"
                     else (golden_hour(photo), photo))
    out = translator.translate_array(source)
    assert out.shape == source.shape and out.dtype == np.uint8
    model, identity = psnr(out, truth), psnr(source, truth)
    assert model > identity + MIN_GAIN_PHOTOS, (model, identity)
