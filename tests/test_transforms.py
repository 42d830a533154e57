"""Tests for cyclegan_cli.data.transforms: output shapes per mode, crop, flip, pad."""

from __future__ import annotations

import numpy as np
import pytest

from cyclegan_cli.data.transforms import PREPROCESS_MODES, Preprocessor, pad_to_multiple, resize

pytestmark = pytest.mark.torchfree  # runs in an install without torch


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _coded(h: int, w: int) -> np.ndarray:
    """Every pixel distinct: channel 0 = row, channel 1 = column (both < 256)."""
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.stack([rows, cols, np.full_like(rows, 7)], axis=-1).astype(np.uint8)


def test_modes_are_the_documented_five():
    assert set(PREPROCESS_MODES) == {
        "resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"
    }


def test_invalid_mode_raises():
    with pytest.raises(ValueError, match="unknown preprocess mode"):
        Preprocessor(mode="resize")
    with pytest.raises(ValueError):
        Preprocessor(mode="")


# -- shapes per mode ---------------------------------------------------------------------------


@pytest.mark.parametrize("hw", [(300, 400), (286, 286), (120, 90), (500, 260)])
@pytest.mark.parametrize("rng_seed", [None, 0])
def test_resize_and_crop_shape(hw, rng_seed):
    pre = Preprocessor("resize_and_crop", load_size=286, crop_size=256)
    prepared = pre.prepare(_image(*hw))
    assert prepared.shape == (286, 286, 3)
    rng = None if rng_seed is None else np.random.default_rng(rng_seed)
    out = pre(_image(*hw), rng)
    assert out.shape == (256, 256, 3)
    assert out.dtype == np.uint8
    assert out.flags["C_CONTIGUOUS"]


def test_crop_mode_takes_a_window_of_the_original():
    pre = Preprocessor("crop", load_size=64, crop_size=16, flip=False)
    arr = _coded(40, 50)
    assert pre.prepare(arr) is arr  # no resize
    out = pre(arr, None)  # centred: top = (40 - 16) // 2 = 12, left = (50 - 16) // 2 = 17
    np.testing.assert_array_equal(out, arr[12:28, 17:33])
    for seed in range(20):
        out = pre(arr, np.random.default_rng(seed))
        assert out.shape == (16, 16, 3)
        top, left = int(out[0, 0, 0]), int(out[0, 0, 1])
        assert 0 <= top <= 40 - 16 and 0 <= left <= 50 - 16
        np.testing.assert_array_equal(out, arr[top : top + 16, left : left + 16])


def test_random_crop_positions_vary():
    pre = Preprocessor("crop", crop_size=8, flip=False)
    arr = _coded(32, 32)
    corners = {(int(o[0, 0, 0]), int(o[0, 0, 1]))
               for o in (pre(arr, np.random.default_rng(s)) for s in range(30))}
    assert len(corners) > 10


@pytest.mark.parametrize("hw,expected", [
    ((40, 80), (32, 64)),    # 64 * 40 / 80 = 32
    ((50, 100), (32, 64)),   # height 31 (after max with crop 16), padded to 32; width 62 -> 64
    ((90, 60), (96, 64)),    # height 64 * 90 / 60 = 96
    ((10, 100), (16, 64)),   # height 6.4 -> raised to crop_size 16
])
def test_scale_width_shape(hw, expected):
    load = 62 if hw == (50, 100) else 64
    pre = Preprocessor("scale_width", load_size=load, crop_size=16, flip=False)
    prepared = pre.prepare(_image(*hw))
    assert prepared.shape[1] == load
    assert prepared.shape[0] == max(round(load * hw[0] / hw[1]), 16)
    out = pre(_image(*hw), None)
    assert out.shape == (*expected, 3)
    assert out.shape[0] % 4 == 0 and out.shape[1] % 4 == 0


def test_scale_width_keeps_aspect_ratio():
    pre = Preprocessor("scale_width", load_size=128, crop_size=32, flip=False)
    prepared = pre.prepare(_image(150, 200))
    assert prepared.shape == (96, 128, 3)  # 128 * 150 / 200


@pytest.mark.parametrize("hw", [(40, 80), (90, 60), (10, 100)])
def test_scale_width_and_crop_shape(hw):
    pre = Preprocessor("scale_width_and_crop", load_size=64, crop_size=24)
    prepared = pre.prepare(_image(*hw))
    assert prepared.shape[1] == 64
    assert prepared.shape[0] >= 24
    for rng in (None, np.random.default_rng(1)):
        assert pre(_image(*hw), rng).shape == (24, 24, 3)


def test_none_mode_pads_odd_sizes_and_keeps_the_pixels():
    pre = Preprocessor("none", load_size=286, crop_size=256, flip=False)
    arr = _image(37, 53)
    assert pre.prepare(arr) is arr
    out = pre(arr, np.random.default_rng(0))
    assert out.shape == (40, 56, 3)
    np.testing.assert_array_equal(out[:37, :53], arr)
    # reflect padding: row 37 mirrors row 35, column 53 mirrors column 51
    np.testing.assert_array_equal(out[37, :53], arr[35])
    np.testing.assert_array_equal(out[:37, 53], arr[:, 51])


def test_none_mode_leaves_aligned_sizes_alone():
    pre = Preprocessor("none", flip=False)
    arr = _image(32, 48)
    np.testing.assert_array_equal(pre(arr, None), arr)


def test_none_mode_respects_size_multiple():
    pre = Preprocessor("none", flip=False, size_multiple=8)
    assert pre(_image(37, 53), None).shape == (40, 56, 3)
    pre = Preprocessor("none", flip=False, size_multiple=16)
    assert pre(_image(37, 53), None).shape == (48, 64, 3)


# -- small images -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["crop", "resize_and_crop", "scale_width_and_crop"])
@pytest.mark.parametrize("hw", [(10, 20), (20, 10), (5, 5), (1, 1)])
def test_images_smaller_than_the_crop_are_upscaled_then_cropped(mode, hw):
    pre = Preprocessor(mode, load_size=16, crop_size=24)  # crop larger than load: upscale
    for rng in (None, np.random.default_rng(3)):
        assert pre(_image(*hw), rng).shape == (24, 24, 3)


def test_small_image_upscale_keeps_aspect():
    """A 10x20 image cropped to 24 is first scaled so its short side is 24: 24x48."""
    pre = Preprocessor("crop", crop_size=24, flip=False)
    arr = _coded(10, 20).astype(np.uint8)
    scaled = resize(arr, 48, 24)
    out = pre(arr, None)  # centred: left = (48 - 24) // 2 = 12
    np.testing.assert_array_equal(out, scaled[:, 12:36])


# -- flip ---------------------------------------------------------------------------------------


def _flip_count(pre: Preprocessor, arr: np.ndarray, n: int) -> int:
    flipped = 0
    for seed in range(n):
        out = pre(arr, np.random.default_rng(seed))
        if np.array_equal(out, arr[:, ::-1]):
            flipped += 1
        else:
            np.testing.assert_array_equal(out, arr)
    return flipped


def test_flip_happens_about_half_the_time():
    pre = Preprocessor("none", flip=True)
    arr = _coded(8, 12)
    flipped = _flip_count(pre, arr, 400)
    assert 0.4 < flipped / 400 < 0.6


def test_no_flip_when_disabled():
    pre = Preprocessor("none", flip=False)
    assert _flip_count(pre, _coded(8, 12), 100) == 0


def test_no_flip_without_rng():
    pre = Preprocessor("none", flip=True)
    arr = _coded(8, 12)
    for _ in range(20):
        np.testing.assert_array_equal(pre(arr, None), arr)


def test_flip_with_crop_is_a_mirrored_window():
    pre = Preprocessor("crop", crop_size=8, flip=True)
    arr = _coded(20, 20)
    n_flipped = 0
    for seed in range(100):
        out = pre(arr, np.random.default_rng(seed))
        top = int(out[0, 0, 0])
        cols = out[0, :, 1].astype(int)
        if cols[0] > cols[-1]:
            n_flipped += 1
            left = cols[-1]
            np.testing.assert_array_equal(out, arr[top : top + 8, left : left + 8][:, ::-1])
        else:
            left = cols[0]
            np.testing.assert_array_equal(out, arr[top : top + 8, left : left + 8])
    assert 30 < n_flipped < 70


# -- determinism --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", PREPROCESS_MODES)
def test_same_seed_same_output(mode):
    pre = Preprocessor(mode, load_size=48, crop_size=32)
    arr = _image(45, 61, seed=5)
    a = pre(arr, np.random.default_rng(17))
    b = pre(arr, np.random.default_rng(17))
    np.testing.assert_array_equal(a, b)


def test_different_seeds_differ():
    pre = Preprocessor("resize_and_crop", load_size=48, crop_size=32)
    arr = _image(45, 61, seed=5)
    outs = [pre(arr, np.random.default_rng(s)) for s in range(10)]
    assert any(not np.array_equal(outs[0], o) for o in outs[1:])


def test_input_is_not_modified():
    arr = _image(37, 53)
    before = arr.copy()
    for mode in PREPROCESS_MODES:
        Preprocessor(mode, load_size=40, crop_size=32)(arr, np.random.default_rng(0))
    np.testing.assert_array_equal(arr, before)


def test_draft_size_only_for_resize_and_crop():
    assert Preprocessor("resize_and_crop", load_size=300).draft_size == 300
    for mode in ("crop", "scale_width", "scale_width_and_crop", "none"):
        assert Preprocessor(mode).draft_size is None


# -- pad_to_multiple ----------------------------------------------------------------------------


def test_pad_1x1():
    arr = np.array([[[10, 20, 30]]], dtype=np.uint8)
    out = pad_to_multiple(arr, 4)
    assert out.shape == (4, 4, 3)
    assert (out == arr[0, 0]).all()  # the only pixel there is, repeated


def test_pad_2x3():
    arr = _coded(2, 3)
    out = pad_to_multiple(arr, 4)
    assert out.shape == (4, 4, 3)
    np.testing.assert_array_equal(out[:2, :3], arr)
    # every padded pixel is a copy of some original pixel
    originals = {tuple(p) for p in arr.reshape(-1, 3)}
    assert {tuple(p) for p in out.reshape(-1, 3)} <= originals


@pytest.mark.parametrize("h,w", [(1, 1), (1, 7), (2, 3), (3, 2), (5, 5), (4, 4), (9, 1)])
@pytest.mark.parametrize("multiple", [1, 2, 4, 8])
def test_pad_shapes(h, w, multiple):
    arr = _coded(h, w)
    out = pad_to_multiple(arr, multiple)
    ceil = lambda n: -(-n // multiple) * multiple  # noqa: E731
    assert out.shape == (ceil(h), ceil(w), 3)
    np.testing.assert_array_equal(out[:h, :w], arr)
    if multiple == 1 or (h % multiple == 0 and w % multiple == 0):
        assert out is arr
