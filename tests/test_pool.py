"""Tests for cyclegan_cli.training.pool.ImagePool (the history of generated images)."""

from __future__ import annotations

import copy

import pytest
import torch

from cyclegan_cli.training.pool import ImagePool

SHAPE = (3, 2, 2)


def _img(value: float) -> torch.Tensor:
    """A 1-image batch whose every pixel is ``value``: returned images can be told apart."""
    return torch.full((1, *SHAPE), float(value))


def _batch(values) -> torch.Tensor:
    return torch.cat([_img(v) for v in values], 0)


def _ids(batch: torch.Tensor) -> list[float]:
    """The constant value of each image of a batch (checking each image is constant)."""
    out = []
    for image in batch:
        assert torch.all(image == image.flatten()[0])
        out.append(image.flatten()[0].item())
    return out


def test_negative_size_rejected():
    with pytest.raises(ValueError):
        ImagePool(-1)


def test_size_zero_returns_the_input_unchanged():
    pool = ImagePool(0, seed=0)
    x = torch.randn(4, *SHAPE)
    for _ in range(3):
        out = pool.query(x)
        torch.testing.assert_close(out, x, rtol=0, atol=0)
    assert len(pool) == 0


def test_size_zero_output_is_detached():
    pool = ImagePool(0, seed=0)
    x = torch.randn(2, *SHAPE, requires_grad=True)
    out = pool.query(x * 2)
    assert not out.requires_grad
    torch.testing.assert_close(out, x.detach() * 2)


def test_filling_returns_inputs_and_stores_them():
    pool = ImagePool(5, seed=0)
    out = pool.query(_batch([1, 2]))
    assert _ids(out) == [1, 2]
    assert len(pool) == 2
    out = pool.query(_batch([3, 4, 5]))
    assert _ids(out) == [3, 4, 5]
    assert len(pool) == 5
    assert sorted(_ids(torch.cat(pool.images))) == [1, 2, 3, 4, 5]


def test_filling_stores_copies_not_views():
    pool = ImagePool(3, seed=0)
    x = _batch([1, 2])
    pool.query(x)
    x.fill_(100.0)  # mutating the caller's tensor must not change the history
    assert sorted(_ids(torch.cat(pool.images))) == [1, 2]


def test_batch_that_fills_the_pool_midway():
    pool = ImagePool(3, seed=0)
    out = pool.query(_batch([1, 2, 3, 4, 5]))
    # the first three fill the pool and come back unchanged; the last two may be swapped
    assert _ids(out)[:3] == [1, 2, 3]
    assert len(pool) == 3
    for i, v in enumerate(_ids(out)[3:], start=4):
        assert v == i or v in (1, 2, 3, 4)


def test_returned_tensors_are_detached():
    pool = ImagePool(2, seed=0)
    w = torch.tensor(1.0, requires_grad=True)
    for step in range(10):
        out = pool.query(_batch([step, step + 0.5]) * w)
        assert not out.requires_grad
        assert out.grad_fn is None
    assert all(not t.requires_grad for t in pool.images)


def test_full_pool_mixes_new_and_old_about_half_the_time():
    size = 10
    pool = ImagePool(size, seed=123)
    pool.query(_batch(range(size)))  # fill with 0..9
    inserted = set(range(size))
    n_queries, old = 2000, 0
    for k in range(n_queries):
        new = size + k
        (returned,) = _ids(pool.query(_img(new)))
        if returned == new:
            pass
        else:
            old += 1
            # an older image, one that was inserted before and not the new one
            assert returned in inserted
        inserted.add(new)
        assert len(pool) == size
    assert 0.45 < old / n_queries < 0.55


def test_returned_old_images_are_removed_and_replaced_by_the_new_one():
    size = 4
    pool = ImagePool(size, seed=7)
    pool.query(_batch(range(size)))
    for k in range(200):
        new = size + k
        before = sorted(_ids(torch.cat(pool.images)))
        (returned,) = _ids(pool.query(_img(new)))
        after = sorted(_ids(torch.cat(pool.images)))
        if returned == new:
            assert after == before  # the new image was not stored
        else:
            # the returned image left the pool and the new one took its slot
            assert returned in before
            assert after == sorted([v for v in before if v != returned] + [new])


def test_each_slot_gets_returned_eventually():
    size = 5
    pool = ImagePool(size, seed=3)
    pool.query(_batch(range(size)))
    returned_old = set()
    for k in range(500):
        (v,) = _ids(pool.query(_img(1000 + k)))
        if v < size:
            returned_old.add(v)
    assert returned_old == set(range(size))


def _run(pool: ImagePool, start: int, n: int) -> list[float]:
    out = []
    for k in range(n):
        out += _ids(pool.query(_batch([start + 2 * k, start + 2 * k + 1])))
    return out


def test_seeded_pools_are_reproducible():
    a, b = ImagePool(6, seed=42), ImagePool(6, seed=42)
    assert _run(a, 0, 50) == _run(b, 0, 50)
    c = ImagePool(6, seed=43)
    assert _run(ImagePool(6, seed=42), 0, 50) != _run(c, 0, 50)


def test_state_dict_round_trip_gives_identical_outputs():
    pool = ImagePool(6, seed=5)
    _run(pool, 0, 20)
    state = copy.deepcopy(pool.state_dict())
    expected = _run(pool, 1000, 30)

    restored = ImagePool(1, seed=999)  # different size and seed: all of it comes from the state
    restored.load_state_dict(state)
    assert restored.size == 6
    assert len(restored) == 6
    assert _run(restored, 1000, 30) == expected


def test_state_dict_survives_torch_save(tmp_path):
    pool = ImagePool(4, seed=11)
    _run(pool, 0, 10)
    path = tmp_path / "pool.pt"
    torch.save(pool.state_dict(), path)
    expected = _run(pool, 500, 20)

    restored = ImagePool(4)
    restored.load_state_dict(torch.load(path, weights_only=False))
    assert _run(restored, 500, 20) == expected


def test_load_state_dict_accepts_list_rng_state():
    """A state that went through JSON-like serialisation has lists instead of tuples."""
    pool = ImagePool(3, seed=8)
    _run(pool, 0, 5)
    state = pool.state_dict()
    version, internal, gauss = state["rng"]
    state = {**state, "rng": [version, list(internal), gauss]}
    expected = _run(pool, 100, 10)
    restored = ImagePool(3)
    restored.load_state_dict(state)
    assert _run(restored, 100, 10) == expected


def test_state_dict_is_not_affected_by_later_queries():
    pool = ImagePool(3, seed=2)
    _run(pool, 0, 5)
    state = pool.state_dict()
    snapshot = [t.clone() for t in state["images"]]
    _run(pool, 100, 20)
    for a, b in zip(state["images"], snapshot, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


class _ReferencePool:
    """The one-image-at-a-time algorithm of the reference CycleGAN (the pool's specification)."""

    def __init__(self, size: int, seed: int) -> None:
        import random

        self.size, self.images, self.rng = size, [], random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        out = []
        for image in images:
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif self.rng.random() > 0.5:
                slot = self.rng.randrange(self.size)
                out.append(self.images[slot].clone())
                self.images[slot] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)


@pytest.mark.parametrize("size", [1, 3, 7])
def test_batched_pool_equals_the_reference_algorithm(size):
    """Same outputs and same stored images as the per-image algorithm, for random batch sizes
    (repeated slots within one batch included), and after a checkpoint round trip."""
    gen = torch.Generator().manual_seed(size)
    pool, ref = ImagePool(size, seed=11), _ReferencePool(size, seed=11)
    counter = 0
    for step in range(40):
        n = int(torch.randint(1, 9, (1,), generator=gen))
        batch = _batch(range(counter, counter + n))
        counter += n
        assert _ids(pool.query(batch)) == _ids(ref.query(batch)), step
        assert _ids(torch.cat(pool.images)) == _ids(torch.cat(ref.images))
        if step == 20:
            state = copy.deepcopy(pool.state_dict())
            pool = ImagePool(0)
            pool.load_state_dict(state)


def test_pool_keeps_working_when_image_sizes_change():
    pool, ref = ImagePool(3, seed=5), _ReferencePool(3, seed=5)
    for step, side in enumerate([2, 2, 4, 4, 2, 4, 4, 2]):
        batch = torch.full((1, 3, side, side), float(step))
        out, expected = pool.query(batch), ref.query(batch)
        assert out.shape == expected.shape and torch.equal(out, expected)
