"""Paired data for pix2pix (cyclegan_cli/data/pairs.py): the three layouts, missing partners
named, sizes checked up front, and the same crop and flip for both images of a pair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cyclegan_cli.data.pairs import (
    Pair,
    check_pairs,
    find_pairs,
    held_out_pairs,
    pairs_from_ab_root,
    pairs_from_csv,
    pairs_from_folders,
    split_ab,
)
from cyclegan_cli.data.transforms import Preprocessor
from cyclegan_cli.errors import DataError
from tests.conftest import needs_torch

pytestmark = pytest.mark.torchfree


def _img(path: Path, w: int = 40, h: int = 30, seed: int = 0) -> np.ndarray:
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return arr


def test_folders_pair_by_name_whatever_the_extension(tmp_path) -> None:
    _img(tmp_path / "A" / "x.png")
    _img(tmp_path / "B" / "x.jpg")
    _img(tmp_path / "A" / "sub" / "y.png")
    _img(tmp_path / "B" / "sub" / "y.png")
    pairs = pairs_from_folders(tmp_path / "A", tmp_path / "B")
    assert [(p.a.relative_to(tmp_path).as_posix(), p.b.relative_to(tmp_path).as_posix())
            for p in pairs] == [("A/sub/y.png", "B/sub/y.png"), ("A/x.png", "B/x.jpg")]


def test_missing_partners_are_named_on_both_sides(tmp_path) -> None:
    for name in ("a1", "a2", "both"):
        _img(tmp_path / "A" / f"{name}.png")
    for name in ("both", "b1"):
        _img(tmp_path / "B" / f"{name}.png")
    with pytest.raises(DataError) as err:
        pairs_from_folders(tmp_path / "A", tmp_path / "B")
    text = str(err.value)
    assert f"2 image(s) in {tmp_path / 'A'} have no partner in {tmp_path / 'B'}: a1.png, a2.png" \
        in text
    assert f"1 image(s) in {tmp_path / 'B'} have no partner in {tmp_path / 'A'}: b1.png" in text
    assert "\n" not in text
    _img(tmp_path / "C" / "x.png")
    _img(tmp_path / "C" / "x.jpg")
    with pytest.raises(DataError, match="would both pair with the same image"):
        pairs_from_folders(tmp_path / "C", tmp_path / "B")


def test_ab_layout_halves_and_splits(tmp_path) -> None:
    ab = _img(tmp_path / "d" / "train" / "1.png", w=81, h=20)  # odd: last column dropped
    (pair,) = pairs_from_ab_root(tmp_path / "d", "train")
    a, b = pair.load()
    np.testing.assert_array_equal(a, ab[:, :40])
    np.testing.assert_array_equal(b, ab[:, 40:80])
    assert split_ab(ab)[0].shape == (20, 40, 3)
    with pytest.raises(DataError, match="val not found: a paired --dataroot holds train, val"):
        pairs_from_ab_root(tmp_path / "d", "val")
    with pytest.raises(DataError, match="unknown split"):
        pairs_from_ab_root(tmp_path / "d", "holdout")


def test_csv_of_pairs(tmp_path) -> None:
    _img(tmp_path / "in" / "1.png")
    _img(tmp_path / "out" / "1.png")
    absolute = tmp_path / "elsewhere" / "2.png"
    _img(absolute)
    (tmp_path / "pairs.csv").write_text(f"A,B\nin/1.png,out/1.png\n\n{absolute},out/1.png\n")
    pairs = pairs_from_csv(tmp_path / "pairs.csv")
    assert pairs == [Pair(tmp_path / "in" / "1.png", tmp_path / "out" / "1.png"),
                     Pair(absolute, tmp_path / "out" / "1.png")]
    (tmp_path / "plain.csv").write_text("in/1.png,out/1.png\n")  # no header
    assert len(pairs_from_csv(tmp_path / "plain.csv")) == 1
    (tmp_path / "gone.csv").write_text("in/1.png,out/9.png\nin/8.png,out/1.png\n")
    with pytest.raises(DataError, match=r"lists 2 file\(s\) that do not exist: .*out/9.png, "
                                        r".*in/8.png"):
        pairs_from_csv(tmp_path / "gone.csv")
    (tmp_path / "short.csv").write_text("in/1.png\n")
    with pytest.raises(DataError, match="row 1 needs two paths"):
        pairs_from_csv(tmp_path / "short.csv")
    with pytest.raises(DataError, match="cannot read"):
        pairs_from_csv(tmp_path / "missing.csv")


def test_sizes_are_checked_before_training(tmp_path) -> None:
    _img(tmp_path / "A" / "ok.png")
    _img(tmp_path / "B" / "ok.png")
    _img(tmp_path / "A" / "big.png", w=64)
    _img(tmp_path / "B" / "big.png", w=40)
    with pytest.raises(DataError, match=r"1 pair\(s\) of different sizes: big.png ↔ big.png "
                                        r"\(64×30 against 40×30\)"):
        check_pairs(pairs_from_folders(tmp_path / "A", tmp_path / "B"))
    (tmp_path / "B" / "big.png").unlink()
    (tmp_path / "A" / "big.png").unlink()
    (tmp_path / "A" / "bad.png").write_text("not an image")
    (tmp_path / "B" / "bad.png").write_text("not an image")
    unreadable = check_pairs(pairs_from_folders(tmp_path / "A", tmp_path / "B"))
    assert [p.a.name for p, _ in unreadable] == ["bad.png"]
    assert "not an image" in unreadable[0][1]


@pytest.mark.parametrize("mode", ["resize_and_crop", "crop", "scale_width_and_crop", "none"])
def test_both_images_of_a_pair_get_the_same_crop_and_flip(mode) -> None:
    """B is A with its channels swapped (which commutes with resizing): after augmentation it
    still must be, for every seed, so the crop and the flip were the same for both."""
    a = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    b = np.ascontiguousarray(a[..., ::-1])
    pre = Preprocessor(mode=mode, load_size=40, crop_size=32, flip=True)
    flipped = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        out_a, out_b = pre.augment_pair(pre.prepare(a), pre.prepare(b), rng)
        np.testing.assert_array_equal(out_b, out_a[..., ::-1])
        plain = pre.augment(pre.prepare(a), np.random.default_rng(seed))
        np.testing.assert_array_equal(out_a, plain)  # A is augmented as unpaired images are
        flipped += not np.array_equal(out_a, pre.augment(pre.prepare(a), None))
    assert flipped > 5  # the draws really vary
    with pytest.raises(ValueError, match="differ in size"):
        pre.augment_pair(a, b[:, :10], np.random.default_rng(0))


# -- the training side: PairedDataset and the paired sampler (needs torch) -----------------------
def _pairs(tmp_path: Path, n: int = 5, bad: int | None = None) -> list[Pair]:
    """n pairs whose B is A with its channels swapped (so pairing can be checked)."""
    for i in range(n):
        a = _img(tmp_path / "A" / f"{i}.png", w=48, h=40, seed=i)
        (tmp_path / "B").mkdir(exist_ok=True)
        Image.fromarray(np.ascontiguousarray(a[..., ::-1])).save(tmp_path / "B" / f"{i}.png")
    if bad is not None:
        (tmp_path / "A" / f"{bad}.png").write_text("not an image")
    return pairs_from_folders(tmp_path / "A", tmp_path / "B")


@needs_torch
@pytest.mark.parametrize("cache", [False, True])
def test_paired_loader_keeps_pairs_together_and_resumes_exactly(tmp_path, cache) -> None:
    from cyclegan_cli.data.dataset import PairedDataset, make_loader

    dataset = PairedDataset(_pairs(tmp_path), Preprocessor(load_size=40, crop_size=32),
                            seed=3, cache=cache)
    loader = make_loader(dataset, batch_size=2, seed=3, num_workers=0)
    seen = []
    for epoch in range(2):
        for batch in loader.epoch(epoch):
            a, b = batch["A"].numpy(), batch["B"].numpy()
            np.testing.assert_array_equal(b, a[:, ::-1])  # B is its own pair's (channel swap)
            seen.append(a)
    assert not all(np.array_equal(seen[0], s) for s in seen[1:])  # order and crops vary
    resumed = [batch["A"].numpy() for batch in loader.epoch(1, start_step=1)]
    np.testing.assert_array_equal(resumed[0], seen[len(seen) // 2 + 1])  # mid-epoch resume


@needs_torch
def test_an_unreadable_pair_is_named_and_skipped(tmp_path) -> None:
    from cyclegan_cli.data.dataset import PairedDataset

    dataset = PairedDataset(_pairs(tmp_path, n=3, bad=1), Preprocessor(load_size=40,
                                                                         crop_size=32))
    item = dataset[(1, 1, 0, 0)]
    assert len(item["bad"]) == 1 and "1.png" in item["bad"][0]
    np.testing.assert_array_equal(item["B"].numpy(), item["A"].numpy()[::-1])  # pair 2's
    side_b = dataset.load(1, 0, None)
    np.testing.assert_array_equal(side_b.numpy(), dataset.load(0, 0, None).numpy()[::-1])


def test_find_pairs_wants_one_source_and_orients_them(tmp_path) -> None:
    _img(tmp_path / "A" / "x.png", seed=1)
    _img(tmp_path / "B" / "x.png", seed=2)
    for split in ("train", "test"):
        _img(tmp_path / "ab" / split / "y.png", seed=3)
    with pytest.raises(DataError, match="give one source of pairs, not A/ B/ folders and "
                                        "--dataroot"):
        find_pairs(str(tmp_path / "A"), str(tmp_path / "B"), str(tmp_path / "ab"), None)
    with pytest.raises(DataError, match="two at a time"):
        find_pairs(str(tmp_path / "A"), None, None, None)
    with pytest.raises(DataError, match="give pairs: two folders"):
        find_pairs(None, None, None, None)
    (forward,) = find_pairs(str(tmp_path / "A"), str(tmp_path / "B"), None, None)
    (backward,) = find_pairs(str(tmp_path / "A"), str(tmp_path / "B"), None, None,
                             direction="BtoA")
    a, b = forward.load()
    assert [np.array_equal(x, y) for x, y in zip(backward.load(), (b, a), strict=True)] == \
        [True, True]
    # the held-out pairs of a side-by-side root: val/, else test/, oriented the same way
    (held,) = held_out_pairs(tmp_path / "ab", "BtoA")
    assert held.a.parent.name == "test" and held.reverse
    left, right = pairs_from_ab_root(tmp_path / "ab", "test")[0].load()
    assert np.array_equal(held.load()[0], right) and np.array_equal(held.load()[1], left)
    with pytest.raises(DataError, match="no val/ or test/"):
        held_out_pairs(tmp_path / "A")
