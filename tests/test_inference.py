"""The torch-free inference core: ONNX sessions, pre/post-processing, batching and tiling."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from cyclegan_cli.errors import ModelError
from cyclegan_cli.inference import ModelInfo, Translator, load_model, make_session
from cyclegan_cli.inference.imageops import pad_image
from cyclegan_cli.inference.tiling import axis_weights, tile_starts, translate_tiled
from cyclegan_cli.models import build_generator

from .conftest import tiny_config

HORSE = dict(direction="AtoB", domain_from="horse", domain_to="zebra")


def export(net: torch.nn.Module, path: Path, info: ModelInfo | None, size: int = 64) -> Path:
    """Export ``net`` with dynamic batch/height/width and (optionally) our metadata."""
    x = torch.rand(1, 3, size, size) * 2 - 1
    axes = {0: "n", 2: "h", 3: "w"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, x, str(path), input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": axes, "output": axes}, opset_version=17,
                          dynamo=False)
    if info is not None:
        model = onnx.load(str(path))
        for key, value in info.to_props().items():
            prop = model.metadata_props.add()
            prop.key, prop.value = key, value
        onnx.save(model, str(path))
    return path


def torch_backend(net: torch.nn.Module):
    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(batch)).numpy()
    return run


def make_net(name: str, ngf: int, norm: str = "instance", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_generator(name, ngf=ngf, norm=norm).eval()


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    """(onnx path, torch net, info) of a tiny instance-norm ResNet generator."""
    net = make_net("resnet_6blocks", 8)
    info = ModelInfo(**HORSE, architecture="resnet_6blocks", size_multiple=4)
    return export(net, tmp_path_factory.mktemp("m") / "resnet.onnx", info), net, info


@pytest.fixture(scope="module")
def resnet_plain(tmp_path_factory):
    """The same without normalisation: translation-equivariant away from borders."""
    net = make_net("resnet_6blocks", 8, norm="none")
    info = ModelInfo(**HORSE, architecture="resnet_6blocks", size_multiple=4)
    return export(net, tmp_path_factory.mktemp("m") / "plain.onnx", info), net, info


@pytest.fixture(scope="module")
def unet(tmp_path_factory):
    net = make_net("unet_128", 4)
    info = ModelInfo(**HORSE, architecture="unet_128", size_multiple=128)
    return export(net, tmp_path_factory.mktemp("m") / "unet.onnx", info, 128), net, info


@pytest.fixture(scope="module")
def translator(resnet) -> Translator:
    return load_model(resnet[0], threads=1)


def noise(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)


def smooth(h: int, w: int) -> np.ndarray:
    """A smooth colourful test image (gradients and low-frequency waves)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 0.5 + 0.5 * np.sin(x / 23.0) * np.cos(y / 31.0)
    g = (x + y) / (h + w)
    b = 0.5 + 0.5 * np.cos((x - y) / 17.0)
    return np.rint(np.stack([r, g, b], axis=2) * 255).astype(np.uint8)


def blur3(batch: np.ndarray) -> np.ndarray:
    """A local (radius 1) numpy 'generator': 3x3 box blur with edge padding."""
    p = np.pad(batch, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = batch.shape[2:]
    return sum(p[:, :, i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9.0


# -- correctness against torch -----------------------------------------------------------------
def test_onnx_matches_torch_on_odd_size(resnet, translator):
    _, net, info = resnet
    img = noise(37, 53)
    out = translator.translate_array(img)
    assert out.shape == (37, 53, 3) and out.dtype == np.uint8
    # independent reference: reflect-pad 37x53 -> 40x56 (1 before, 2 after), torch, crop back
    padded = np.pad(img, ((1, 2), (1, 2), (0, 0)), mode="reflect")
    x = torch.from_numpy(padded).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        y = net(x)[0, :, 1:38, 1:54].clamp(-1, 1)
    ref = ((y + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.abs(out.astype(int) - ref).max() <= 1
    same_code = Translator(torch_backend(net), info).translate_array(img)
    assert np.abs(out.astype(int) - same_code).max() <= 1


def test_unet_multiple_of_128(unet):
    path, net, info = unet
    t = load_model(path, threads=1)
    assert t.info.size_multiple == 128
    img = noise(37, 53, seed=1)  # padding (91, 75) exceeds the image: edge fallback
    out = t.translate_array(img)
    assert out.shape == (37, 53, 3)
    ref = Translator(torch_backend(net), info).translate_array(img)
    assert np.abs(out.astype(int) - ref).max() <= 1
    assert t.tile_for(64) == 128 and t.tile_for(300) == 384


def test_batch_equals_singles(translator):
    images = [noise(30, 41, seed=s) for s in range(3)] + [noise(17, 9, seed=4),
                                                          noise(30, 41, seed=5, channels=4)]
    outs = translator.translate_batch(images)
    for img, out in zip(images, outs, strict=True):
        single = translator.translate_array(img)
        assert out.shape == single.shape
        assert np.abs(out.astype(int) - single).max() <= 1


def test_batch_uses_one_call_per_size(resnet):
    _, net, info = resnet
    shapes = []
    inner = torch_backend(net)

    def spy(batch):
        shapes.append(batch.shape)
        return inner(batch)

    t = Translator(spy, info)
    t.translate_batch([noise(20, 24, seed=s) for s in range(3)])
    assert shapes == [(3, 3, 20, 24)]


# -- tiling ------------------------------------------------------------------------------------
@pytest.mark.parametrize("length,tile,overlap", [(200, 64, 32), (65, 64, 16), (1000, 96, 24),
                                                   (129, 32, 16), (300, 40, 0)])
def test_tile_layout_and_weights(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] == length - tile
    assert all(a + tile - b >= overlap for a, b in zip(starts, starts[1:], strict=False))
    total = np.zeros(length)
    for s, w in zip(starts, axis_weights(starts, tile, overlap), strict=True):
        assert w.min() >= 0 and w.max() <= 1
        total[s:s + tile] += w
    assert np.allclose(total, 1.0)  # the raised cosines form a partition of unity
    assert tile_starts(50, 64, 32) == [0]
    aligned = tile_starts(length + (-length % 8), tile + (-tile % 8), overlap, align=8)
    assert all(x % 8 == 0 for x in aligned)
    assert all(a + tile + (-tile % 8) - b >= overlap for a, b in zip(aligned, aligned[1:],
                                                                       strict=False))


@pytest.mark.parametrize("shape,tile", [((160, 200), 64), ((36, 300), 40), ((128, 20), 32)])
def test_tiling_is_exact_for_local_ops(shape, tile):
    info = ModelInfo(**HORSE, architecture="test", size_multiple=4)
    img = noise(*shape, seed=3)
    identity = Translator(lambda b: b, info)
    assert np.array_equal(identity.translate_array(img, tile=tile), img)
    t = Translator(blur3, info, overlap=16)
    diff = np.abs(t.translate_array(img, tile=tile).astype(int) - t.translate_array(img))
    assert diff.max() <= 1  # pixels near a tile's inner edges get no weight
    # (sizes are multiples of 4 so the untiled image needs no padding: at the image border
    # the padding then matches the tiles')


def test_large_images_are_tiled_automatically(resnet):
    _, net, info = resnet
    shapes = []

    def spy(batch):
        shapes.append(batch.shape)
        return batch

    t = Translator(spy, info, max_pixels=5000, tile_size=64, tile_batch=2)
    img = noise(100, 130)
    assert np.array_equal(t.translate_array(img), img)
    assert shapes and all(s[0] <= 2 and s[2:] == (64, 64) for s in shapes)
    shapes.clear()
    t.translate_array(noise(50, 60))  # 3000 pixels: one call
    assert shapes == [(1, 3, 52, 60)]


def edge_strength(img: np.ndarray, axis: int) -> np.ndarray:
    """Mean absolute difference between neighbouring rows (axis 0) or columns (axis 1)."""
    other = (1, 2) if axis == 0 else (0, 2)
    return np.abs(np.diff(img.astype(float), axis=axis)).mean(axis=other)


@pytest.mark.parametrize("img", [noise(160, 200), smooth(160, 200)], ids=["noise", "smooth"])
def test_tiled_matches_untiled_with_global_norm_statistics(resnet, img):
    t = load_model(resnet[0], threads=1)
    full = t.translate_array(img).astype(int)
    # every tile normalised with the whole image's statistics: the same picture
    diff = np.abs(t.translate_array(img, tile=128).astype(int) - full)
    assert diff.mean() < 0.05 and diff.max() <= 1, (diff.mean(), diff.max())  # 0.01, 1
    # each tile with its own statistics (the plain way) is visibly off
    t.global_norm = False
    local = np.abs(t.translate_array(img, tile=128).astype(int) - full)
    assert local.mean() > 1.5, local.mean()  # 2.2 (noise), 15.8 (smooth)


def normlike(batch: np.ndarray) -> np.ndarray:
    """A numpy 'generator' that, like instance norm, depends on each tile's own mean."""
    return np.clip(0.7 * batch - 0.5 * batch.mean(axis=(2, 3), keepdims=True), -1, 1)


def test_no_seams():
    info = ModelInfo(**HORSE, architecture="test", size_multiple=4)
    img = smooth(160, 200)
    full = Translator(normlike, info).translate_array(img)
    soft = Translator(normlike, info).translate_array(img, tile=64)  # overlap 32
    hard = Translator(normlike, info, overlap=0).translate_array(img, tile=64)
    for axis in (0, 1):
        # the largest step between neighbouring rows/columns, relative to the typical one
        seam = {name: _peak(edge_strength(out, axis))
                for name, out in (("full", full), ("soft", soft), ("hard", hard))}
        assert seam["hard"] > 5 * seam["full"], seam  # the test does see hard seams (~13)
        assert seam["soft"] <= 1.5 * seam["full"], seam  # measured 1.38 vs 1.17 / 1.19


def _peak(profile: np.ndarray) -> float:
    return float(profile.max() / np.median(profile))


def blocks4(batch: np.ndarray) -> np.ndarray:
    """A numpy 'generator' that, like a stride-4 network, works on a 4x4 pixel grid."""
    n, c, h, w = batch.shape
    means = batch.reshape(n, c, h // 4, 4, w // 4, 4).mean(axis=(3, 5))
    return np.repeat(np.repeat(means, 4, axis=2), 4, axis=3)


@pytest.mark.parametrize("shape", [(150, 202), (160, 200), (97, 333)])
def test_tiles_sit_on_the_whole_images_grid(shape):
    info = ModelInfo(**HORSE, architecture="test", size_multiple=4)
    img = noise(*shape)
    t = Translator(blocks4, info)
    full = t.translate_array(img).astype(int)
    tiled = t.translate_array(img, tile=64).astype(int)
    assert np.abs(tiled - full).max() <= 1
    # tiles at arbitrary offsets average other 4x4 blocks
    padded, (top, left) = pad_image(img, 4)
    h, w = padded.shape[:2]
    if any(x % 4 for x in tile_starts(h, 64, 32) + tile_starts(w, 64, 32)):
        shifted = translate_tiled(padded, t.forward, 64, 32, align=1,
                                  crop=(top, left, *shape))
        assert np.abs(shifted.astype(int) - full).mean() > 1


def test_tiled_equals_untiled_without_norm(resnet_plain):
    t = load_model(resnet_plain[0], threads=1)
    img = smooth(160, 200)
    full = t.translate_array(img)
    diff = np.abs(t.translate_array(img, tile=64).astype(int) - full)
    assert diff.max() <= 1 and diff.mean() < 0.25, (diff.mean(), diff.max())  # 0.19, 1
    diff = np.abs(t.translate_array(img, tile=128).astype(int) - full)
    assert diff.max() == 0


# -- image modes ------------------------------------------------------------------------------
def test_alpha_is_kept_byte_identical(translator):
    rgba = noise(23, 31, seed=7, channels=4)
    out = translator.translate_array(rgba)
    assert out.shape == (23, 31, 4)
    assert np.array_equal(out[:, :, 3], rgba[:, :, 3])
    assert np.array_equal(out[:, :, :3], translator.translate_array(rgba[:, :, :3]))
    img = translator.translate_image(Image.fromarray(rgba, "RGBA"))
    assert img.mode == "RGBA" and np.array_equal(np.asarray(img)[:, :, 3], rgba[:, :, 3])


def test_grayscale_becomes_rgb(translator):
    gray = noise(19, 27, seed=8, channels=1)[:, :, 0]
    expected = translator.translate_array(np.repeat(gray[:, :, None], 3, axis=2))
    for arr in (gray, gray[:, :, None]):
        out = translator.translate_array(arr)
        assert out.shape == (19, 27, 3) and np.array_equal(out, expected)
    img = translator.translate_image(Image.fromarray(gray, "L"))
    assert img.mode == "RGB" and img.size == (27, 19)
    assert np.array_equal(np.asarray(img), expected)


def test_uint16_is_scaled(translator):
    img = noise(21, 22, seed=9)
    expected = translator.translate_array(img)
    assert np.array_equal(translator.translate_array(img.astype(np.uint16) * 257), expected)
    gray16 = Image.fromarray(img[:, :, 0].astype(np.uint16) * 257)
    assert gray16.mode.startswith("I")
    out = translator.translate_image(gray16)
    assert out.mode == "RGB" and out.size == (22, 21)


def test_pil_modes(translator):
    rgb = Image.fromarray(noise(16, 18, seed=10))
    la = rgb.convert("LA")
    assert translator.translate_image(la).mode == "RGBA"
    assert translator.translate_image(rgb.convert("CMYK")).mode == "RGB"
    assert translator.translate_image(rgb.convert("P")).mode == "RGB"
    pal = rgb.convert("P")
    pal.info["transparency"] = 0
    assert translator.translate_image(pal).mode == "RGBA"
    assert translator.translate_image(rgb.convert("1")).mode == "RGB"


def test_bad_arrays(translator):
    from cyclegan_cli.errors import DataError

    with pytest.raises(DataError, match="shape"):
        translator.translate_array(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(DataError, match="float"):
        translator.translate_array(np.zeros((4, 4, 3), np.float32))


# -- errors ------------------------------------------------------------------------------------
def test_direction_mismatch(resnet):
    with pytest.raises(ModelError, match=r"translates AtoB \(horse→zebra\); you asked for BtoA"):
        load_model(resnet[0], direction="BtoA")
    assert load_model(resnet[0], direction="AtoB").info.domain_to == "zebra"


def test_not_a_model(tmp_path, resnet):
    junk = tmp_path / "junk.onnx"
    junk.write_text("hello")
    with pytest.raises(ModelError, match="junk.onnx: not a usable ONNX model"):
        make_session(junk)
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "missing.onnx")
    with pytest.raises(ModelError, match="directory"):
        load_model(tmp_path)
    bare = export(resnet[1], tmp_path / "bare.onnx", None)
    with pytest.raises(ModelError, match="bare.onnx: not a cyclegan-cli model"):
        make_session(bare)  # strict unless asked to accept models without metadata
    loose = load_model(bare)  # usable: its shapes fit an image generator (issue 8)
    assert loose.notes and "no cyclegan-cli metadata" in loose.notes[0]
    with pytest.raises(ModelError, match="unknown backend"):
        load_model(bare, backend="tf")


# -- torch backend and torch-free import ------------------------------------------------------
def test_torch_backend_on_run_dir(tiny_data, tmp_path):
    from rich.console import Console

    from cyclegan_cli.rundir import load_generator
    from cyclegan_cli.training.loop import train

    result = train(tiny_config(tiny_data, tmp_path, max_steps=2),
                   console=Console(file=io.StringIO()), quiet=True)
    t = load_model(result.run_dir, backend="torch", direction="BtoA", device="cpu")
    # the same names `cgan export` writes into the ONNX file
    from cyclegan_cli.export import export_run

    (exported,) = export_run(result.run_dir, "BtoA", tmp_path / "w", verify=False)
    info = load_model(exported.path).info
    assert (t.info.direction, t.info.domain_from, t.info.domain_to) == (
        "BtoA", info.domain_from, info.domain_to)
    assert t.info.domain_from != "trainB"
    assert t.info.size_multiple == 4
    img = noise(37, 53, seed=11)
    out = t.translate_array(img)
    assert out.shape == (37, 53, 3) and out.dtype == np.uint8
    net, _ = load_generator(result.run_dir, "BtoA")
    assert np.array_equal(out, Translator(torch_backend(net), t.info).translate_array(img))
    with pytest.raises(ModelError, match="not a cyclegan-cli run directory"):
        load_model(tmp_path, backend="torch")


def test_import_and_translate_without_torch(resnet):
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np\n"
        "import cyclegan_cli.inference as inf\n"
        f"t = inf.load_model({str(resnet[0])!r}, threads=1)\n"
        "out = t.translate_array(np.zeros((20, 30, 3), np.uint8))\n"
        "assert out.shape == (20, 30, 3)\n"
        "assert sys.modules['torch'] is None\n"
        "print('ok')\n"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).parent.parent, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (5, 9), (7, 7)])
def test_tiny_images_are_padded_to_what_the_network_needs(translator, shape):
    out = translator.translate_array(noise(*shape))
    assert out.shape == (*shape, 3) and out.dtype == np.uint8


def test_a_failing_batch_is_reported_and_the_rest_complete(translator, tmp_path):
    from PIL import Image

    from cyclegan_cli.inference.files import plan_jobs, translate_files

    (tmp_path / "in").mkdir()
    Image.fromarray(noise(20, 24)).save(tmp_path / "in" / "ok.png")
    Image.fromarray(noise(16, 16)).save(tmp_path / "in" / "boom.png")

    class Failing:  # the real translator, except that one size fails at run time
        info, max_pixels = translator.info, translator.max_pixels

        def translate_batch(self, arrays, tile=None):
            return translator.translate_batch(arrays, tile)

        def translate_array(self, arr, tile=None):
            if arr.shape[:2] == (16, 16):
                raise RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : boom\nmore")
            return translator.translate_array(arr, tile)

    jobs = plan_jobs([tmp_path / "in"], tmp_path / "out")
    summary = translate_files(Failing(), jobs, batch_size=1)
    assert [p.name for p in summary.written] == ["ok.png"]
    assert [(p.name, r) for p, r in summary.failed] == [
        ("boom.png", "[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : boom")]


# -- residual generators (tanh(atanh(x) + net(x))) through the whole inference core ------------
def test_residual_generator_through_the_core(tmp_path, monkeypatch):
    from cyclegan_cli.export.quantize import photo_crops, quantize_int8

    torch.manual_seed(0)
    net = build_generator("resnet_6blocks", ngf=8, residual=True).eval()
    torch.nn.init.normal_(net.model[-1].weight, 0.0, 0.02)  # a non-trivial change
    info = ModelInfo(**HORSE, architecture="resnet_6blocks", size_multiple=4)
    path = export(net, tmp_path / "residual.onnx", info)
    img = smooth(160, 200)
    ref = Translator(torch_backend(net), info).translate_array(img).astype(int)
    for rewrite in (False, True):  # the plain graph and the CPU rewrite
        core = load_model(path, threads=1, cpu_rewrite=rewrite)
        out = core.translate_array(img).astype(int)
        assert np.abs(out - ref).max() <= 1
        assert np.abs(core.translate_array(img, tile=128).astype(int) - ref).max() <= 1
    assert np.abs(ref - img).mean() > 2  # it does change the picture
    # the input's detail survives: a one-level checkerboard added to the input comes through
    fine = img.astype(int) + (np.indices(img.shape[:2]).sum(0) % 2)[..., None] * 4
    out_fine = core.translate_array(fine.clip(0, 255).astype(np.uint8)).astype(int)
    checker = np.abs(np.diff(out_fine - ref, axis=1)).mean()
    assert checker > 2, checker
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # ORT's shape inference must not leave files in the working folder
    q = quantize_int8(path, tmp_path / "residual.int8.onnx", photo_crops(2, 64), size=64)
    assert list(cwd.iterdir()) == [] and Path.cwd() == cwd
    q_out = load_model(q, threads=1).translate_array(img).astype(int)
    assert np.abs(q_out - ref).mean() < 3
