"""Instance-norm statistics shared between images (global-norm tiling, video stabilisation)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from cyclegan_cli.export import export_generator
from cyclegan_cli.inference import ModelInfo, load_model
from cyclegan_cli.inference.norm_stats import (
    OnnxNormStats,
    apply_model,
    average,
    collect_model,
    instance_norms,
)
from cyclegan_cli.inference.torch_backend import TorchNormStats
from cyclegan_cli.models import build_generator

INFO = ModelInfo(direction="AtoB", domain_from="a", domain_to="b",
                 architecture="resnet_6blocks", size_multiple=4, version="test")


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    torch.manual_seed(0)
    net = build_generator("resnet_6blocks", ngf=8).eval()
    return net, export_generator(net, INFO, tmp_path_factory.mktemp("norm") / "g.onnx")


def batch(h: int, w: int, seed: int, n: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 3, h, w), dtype=np.float32) * 2 - 1


def test_graphs_have_one_pair_of_statistics_per_norm(generator):
    _, path = generator
    model = onnx.load(path)
    count = len(instance_norms(model))
    assert count == 1 + 2 + 2 * 6 + 2  # stem, 2 down, 2 per residual block, 2 up
    collect, apply = collect_model(model), apply_model(model)
    onnx.checker.check_model(collect)
    onnx.checker.check_model(apply)
    assert len(collect.graph.output) == 2 * count  # the statistics only: the rest is pruned
    assert "output" not in {o.name for o in collect.graph.output}
    assert not any(n.op_type == "Tanh" for n in collect.graph.node)  # (after the last norm)
    assert len(apply.graph.input) == 1 + 2 * count
    assert not instance_norms(apply) and not instance_norms(collect)


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_own_statistics_reproduce_the_plain_output(generator, backend):
    net, path = generator
    norm = (OnnxNormStats(path, threads=1) if backend == "onnx"
            else TorchNormStats(net, torch.device("cpu")))
    x = batch(36, 44, seed=1)
    with torch.inference_mode():
        plain = net(torch.from_numpy(x)).numpy()
    stats = norm.collect(x)
    np.testing.assert_allclose(norm.apply(x, stats), plain, atol=2e-4)
    # another image's statistics give another picture
    other = norm.collect(batch(36, 44, seed=2) * 0.3)
    assert np.abs(norm.apply(x, other) - plain).mean() > 1e-2


def test_onnx_and_torch_statistics_agree(generator):
    net, path = generator
    x = batch(40, 28, seed=3)
    a = OnnxNormStats(path, threads=1).collect(x)
    b = TorchNormStats(net, torch.device("cpu")).collect(x)
    assert len(a) == len(b) == 2 * 17
    for u, v in zip(a, b, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-3, atol=1e-4)


def test_statistics_of_a_batch_pool_to_the_statistics_of_the_whole(generator):
    net, _ = generator
    norm = TorchNormStats(net, torch.device("cpu"))
    x = batch(32, 32, seed=4, n=2)
    both = norm.collect(x)  # the two images pooled
    each = [norm.collect(x[i:i + 1]) for i in range(2)]
    for u, v in zip(both, average(each), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)
    # the first norm's input is a plain convolution of the images: pooled statistics equal
    # the mean and variance over both images at once
    first = average(each)
    feats = torch.nn.Sequential(*list(net.model.children())[:3])  # pad, conv, norm
    with torch.inference_mode():
        h = feats[1](feats[0](torch.from_numpy(x)))
    np.testing.assert_allclose(first[0][0, :, 0, 0], h.mean((0, 2, 3)).numpy(), atol=1e-5)
    np.testing.assert_allclose(first[1][0, :, 0, 0], h.var((0, 2, 3), unbiased=False).numpy(),
                               rtol=1e-4, atol=1e-6)


def _collected_shapes(path, budget: int | None, monkeypatch) -> list[tuple[int, ...]]:
    """Shapes the statistics pass sees for a 200×120 image translated in tiles."""
    from cyclegan_cli.inference import limits

    if budget is not None:
        monkeypatch.setattr(limits, "STATS_MEMORY", budget)
    t = load_model(path, threads=1, max_pixels=64 * 64)
    seen: list[tuple[int, ...]] = []
    collect = t.norm.collect
    t.norm.collect = lambda x: seen.append(x.shape) or collect(x)
    img = (np.random.default_rng(5).random((200, 120, 3)) * 255).astype(np.uint8)
    assert t.translate_array(img).shape == img.shape  # tiled (24000 px > 4096)
    return seen


def test_statistics_at_full_resolution_when_they_fit(generator, monkeypatch):
    assert _collected_shapes(generator[1], None, monkeypatch) == [(1, 3, 200, 120)]


def test_large_images_take_statistics_from_a_downscaled_copy(generator, monkeypatch):
    (shape,) = _collected_shapes(generator[1], 0, monkeypatch)  # nothing fits the budget
    n, c, h, w = shape
    assert h * w <= 64 * 64 * 1.1 and abs(h / w - 200 / 120) < 0.2  # from <= max_pixels
