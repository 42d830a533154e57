"""The built-in demo dataset (make_demo_dataset) and its colour grade (golden_hour)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cyclegan_cli.data.demo import (
    DEMO_PHOTOS_A,
    DEMO_PHOTOS_B,
    DEMO_PHOTOS_TEST,
    DEMO_SPLIT,
    _photos,
    golden_hour,
    golden_hour_inverse,
    make_demo_dataset,
)
from cyclegan_cli.errors import DataError

pytestmark = pytest.mark.torchfree  # runs in an install without torch

SIZE, N_TRAIN, N_TEST = 32, 12, 5
COUNTS = {"trainA": N_TRAIN, "trainB": N_TRAIN, "testA": N_TEST, "testB_true": N_TEST}


def _make(root: Path, seed: int = 0) -> Path:
    return make_demo_dataset(root, size=SIZE, n_train=N_TRAIN, n_test=N_TEST, seed=seed)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make(tmp_path_factory.mktemp("demo0"))


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.mode == "RGB"
        return np.asarray(img).copy()


def _split(root: Path, name: str) -> list[np.ndarray]:
    return [_read(p) for p in sorted((root / name).iterdir())]


def _all_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------- layout


def test_layout_counts_and_formats(demo: Path) -> None:
    assert DEMO_SPLIT == ("trainA", "trainB", "testA", "testB_true")
    assert sorted(p.name for p in demo.iterdir()) == sorted([*DEMO_SPLIT, "README.txt"])
    for name, count in COUNTS.items():
        files = sorted((demo / name).iterdir())
        assert [p.name for p in files] == [f"{i:04d}.png" for i in range(count)]
        for p in files:
            with Image.open(p) as img:
                assert (img.format, img.mode, img.size) == ("PNG", "RGB", (SIZE, SIZE))
    readme = (demo / "README.txt").read_text()
    assert "trainA" in readme and "testB_true" in readme and f"{SIZE}x{SIZE}" in readme
    # no temporary files left behind by the atomic writes
    assert sum(1 for p in demo.rglob("*") if p.is_file()) == sum(COUNTS.values()) + 1


def test_returns_root_and_accepts_str(tmp_path: Path) -> None:
    root = tmp_path / "nested" / "demo"
    assert make_demo_dataset(str(root), size=8, n_train=1, n_test=0) == root
    assert len(list((root / "trainA").iterdir())) == 1
    assert list((root / "testA").iterdir()) == []


@pytest.mark.parametrize(
    "kwargs", [{"size": 7}, {"n_train": 0}, {"n_test": -1}, {"size": 0, "n_train": 0}]
)
def test_invalid_arguments(tmp_path: Path, kwargs: dict) -> None:
    args = {"size": 16, "n_train": 2, "n_test": 1, **kwargs}
    with pytest.raises(DataError):
        make_demo_dataset(tmp_path / "bad", **args)
    assert not (tmp_path / "bad").exists()


def test_images_are_real_photo_crops(demo: Path) -> None:
    for name in DEMO_SPLIT:
        for arr in _split(demo, name):
            assert arr.std() > 3  # not flat
    a = np.stack(_split(demo, "trainA"))
    assert len({arr.tobytes() for arr in a}) == N_TRAIN  # all distinct crops


# --------------------------------------------------------------------------- determinism


def test_same_seed_byte_identical(demo: Path, tmp_path: Path) -> None:
    again = _all_files(_make(tmp_path / "again", seed=0))
    first = _all_files(demo)
    assert again.keys() == first.keys()
    for key in first:
        assert again[key] == first[key], key


def test_different_seed_differs(demo: Path, tmp_path: Path) -> None:
    other = _all_files(_make(tmp_path / "other", seed=1))
    first = _all_files(demo)
    assert other.keys() == first.keys()
    for name in DEMO_SPLIT:
        keys = [k for k in first if k.startswith(name + "/")]
        assert any(other[k] != first[k] for k in keys), name
    assert other["README.txt"] == first["README.txt"]


# --------------------------------------------------------------------------- pairing


def test_test_split_is_paired(demo: Path) -> None:
    test_a, test_b = _split(demo, "testA"), _split(demo, "testB_true")
    assert len(test_a) == len(test_b) == N_TEST
    for a, b in zip(test_a, test_b, strict=True):
        np.testing.assert_array_equal(golden_hour(a), b)
        assert not np.array_equal(a, b)


def test_train_split_is_unpaired(demo: Path) -> None:
    train_a, train_b = _split(demo, "trainA"), _split(demo, "trainB")
    graded = []
    for a in train_a:  # include mirrored A, since crops are randomly flipped
        graded += [golden_hour(a).astype(float), golden_hour(a[:, ::-1]).astype(float)]
    for i, b in enumerate(train_b):
        closest = min(np.abs(g - b).mean() for g in graded)
        assert closest > 1.0, (i, closest)
    # but B is graded: warmer on average than A
    warmth = [float(x[..., 0].mean()) - float(x[..., 2].mean()) for x in (train_a + train_b)]
    assert np.mean(warmth[N_TRAIN:]) > np.mean(warmth[:N_TRAIN])


# --------------------------------------------------------------------------- golden_hour


def _gray_ramp() -> np.ndarray:
    return np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)  # 1x256x3


def _warmth(arr: np.ndarray) -> float:
    return float(arr[..., 0].astype(float).mean() - arr[..., 2].astype(float).mean())


def test_golden_hour_dtype_shape_and_determinism() -> None:
    rng = np.random.default_rng(0)
    for shape in [(1, 1, 3), (7, 5, 3), (32, 48, 3)]:
        x = rng.integers(0, 256, shape, dtype=np.uint8)
        before = x.copy()
        y = golden_hour(x)
        assert y.dtype == np.uint8 and y.shape == shape
        np.testing.assert_array_equal(x, before)  # input untouched
        np.testing.assert_array_equal(golden_hour(x), y)
        assert not np.array_equal(x, y)


def test_golden_hour_is_per_pixel() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    y = golden_hour(x)
    np.testing.assert_array_equal(golden_hour(x[2:4, 3:7]), y[2:4, 3:7])
    np.testing.assert_array_equal(golden_hour(x.reshape(1, -1, 3)), y.reshape(1, -1, 3))


def test_golden_hour_warms_gray_ramp() -> None:
    ramp = _gray_ramp()
    out = golden_hour(ramp)
    assert _warmth(ramp) == 0
    assert _warmth(out) > 20
    r, b = out[0, :, 0].astype(int), out[0, :, 2].astype(int)
    assert (r >= b).all()  # never cooler than neutral
    assert (r[40:210] - b[40:210] > 10).all()  # clearly warm through the mid-tones


def test_golden_hour_warms_astronaut() -> None:
    from skimage import data

    img = data.astronaut()
    out = golden_hour(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert _warmth(out) > _warmth(img) + 20
    assert out[..., 2].astype(float).mean() < img[..., 2].astype(float).mean()


def test_golden_hour_monotone_on_gray_ramp() -> None:
    out = golden_hour(_gray_ramp())[0].astype(int)
    assert (np.diff(out, axis=0) >= 0).all()
    assert out[-1].sum() > out[0].sum()


def test_golden_hour_does_not_clip_mid_gray() -> None:
    for v in (64, 128, 192):
        px = golden_hour(np.full((1, 1, 3), v, np.uint8))[0, 0]
        assert ((px > 0) & (px < 255)).all(), (v, px)
    black = golden_hour(np.zeros((1, 1, 3), np.uint8))[0, 0]
    assert (black > 0).all()  # lifted blacks
    distinct = {tuple(p) for p in golden_hour(_gray_ramp())[0]}
    assert len(distinct) > 150  # a ramp stays a ramp, not a handful of clipped values


def test_golden_hour_is_invertible() -> None:
    every = np.stack(np.meshgrid(*[np.arange(256)] * 3, indexing="ij"), -1).reshape(1, -1, 3)
    every = every[:, ::7].astype(np.uint8)  # 2.4 M colours, every channel value present
    back = golden_hour_inverse(golden_hour(every)).astype(int)
    err = np.abs(back - every)
    assert err.max() <= 3 and err.mean() < 0.4  # exact up to 8-bit rounding
    ramp = golden_hour(_gray_ramp())[0].astype(int)
    assert (np.diff(ramp, axis=0) > 0).sum() >= 3 * 200  # strictly increasing almost everywhere
    assert ramp.min() > 0 and ramp.max() < 255  # nothing clips
    # the inverse undoes it on a real photograph too, and is a different (cooling) map
    photo = _photos(("coffee.png",))[0]
    assert np.abs(golden_hour_inverse(golden_hour(photo)).astype(int) - photo).mean() < 0.5
    assert _warmth(golden_hour_inverse(photo)) < _warmth(photo) - 10


# --------------------------------------------------------------------------- photo split


def test_photo_sets_are_disjoint_and_installed() -> None:
    sets = [set(DEMO_PHOTOS_A), set(DEMO_PHOTOS_B), set(DEMO_PHOTOS_TEST)]
    assert all(s for s in sets)
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    for names in (DEMO_PHOTOS_A, DEMO_PHOTOS_B, DEMO_PHOTOS_TEST):
        assert len(_photos(names)) == len(names)  # every file ships with scikit-image


def test_test_crops_come_from_held_out_photos(demo: Path) -> None:
    readme = (demo / "README.txt").read_text()
    for name in DEMO_PHOTOS_TEST:
        assert name in readme
    # each test crop is found, pixel for pixel, nowhere in the training photos' crops: check by
    # colour histogram overlap with the held-out photos vs the training photos
    held = np.concatenate([p.reshape(-1, 3) for p in _photos(DEMO_PHOTOS_TEST)])
    train = np.concatenate([p.reshape(-1, 3) for p in _photos(DEMO_PHOTOS_A)])
    def hist(px: np.ndarray) -> np.ndarray:
        h, _ = np.histogramdd(px // 32, bins=(8, 8, 8), range=[(0, 8)] * 3)
        return h.ravel() / h.sum()
    h_held, h_train = hist(held), hist(train)
    for crop in _split(demo, "testA"):
        h = hist(crop.reshape(-1, 3))
        assert np.minimum(h, h_held).sum() > np.minimum(h, h_train).sum()


def test_known_answer_tasks_change_photos_deterministically_and_invert(tmp_path):
    from cyclegan_cli.data.demo import DEMO_PHOTOS_TEST, _photos
    from cyclegan_cli.data.tasks import TASKS, make_task_dataset, task
    from cyclegan_cli.evaluation.metrics import psnr

    assert len(TASKS) >= 5 and len({t.kind for t in TASKS.values()}) == len(TASKS)
    photo = _photos(DEMO_PHOTOS_TEST[:1])[0][:96, :128]
    for t in TASKS.values():
        out = t.forward(photo)
        assert out.dtype == np.uint8 and out.shape == photo.shape
        assert np.array_equal(out, t.forward(photo))  # deterministic
        assert 15 < psnr(out, photo) < 36, t.name  # a visible change, not a different image
        if t.inverse is not None:
            assert psnr(t.inverse(out), photo) > 45, t.name  # exact up to 8-bit rounding
    root = make_task_dataset(tmp_path / "mix", "channel_mix", size=16, n_train=3, n_test=2)
    assert len(list((root / "trainB").glob("*.png"))) == 3
    truth = np.asarray(Image.open(root / "testB_true" / "0000.png"))
    source = np.asarray(Image.open(root / "testA" / "0000.png"))
    assert np.array_equal(truth, TASKS["channel_mix"].forward(source))
    assert "channel_mix" in (root / "README.txt").read_text()
    with pytest.raises(ValueError, match="golden_hour"):
        task("sepia")
    # paired: trainB is the task applied to trainA, under the same names; same test split
    pairs = make_task_dataset(tmp_path / "pairs", "channel_mix", size=16, n_train=3, n_test=2,
                              paired=True)
    for a in sorted((pairs / "trainA").glob("*.png")):
        assert np.array_equal(np.asarray(Image.open(pairs / "trainB" / a.name)),
                              TASKS["channel_mix"].forward(np.asarray(Image.open(a))))
    for name in ("testA/0000.png", "testB_true/0001.png"):
        assert (pairs / name).read_bytes() == (root / name).read_bytes()
    assert "paired: same file names" in (pairs / "README.txt").read_text()
