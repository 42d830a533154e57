"""The standard metrics through their libraries (the ``[metrics]`` extra): FID/KID by
torch-fidelity, LPIPS by the lpips package — offline, with a stand-in feature extractor
registered through torch-fidelity's own extension point, and the one line a user gets where the
real weights cannot be downloaded."""

from __future__ import annotations

import json
import os
import socket
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cyclegan_cli.cli import app


def _importable(name: str) -> str | None:
    """None when ``name`` imports, else why not (one line)."""
    try:
        __import__(name)
    except Exception as exc:  # noqa: BLE001 - a torchvision of another torch build raises
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:120]}"
    return None


WHY = _importable("torch_fidelity") or _importable("lpips")
REQUIRED = bool(os.environ.get("CGAN_REQUIRE_METRICS"))  # .ci/run's metrics venv: never skip
pytestmark = [pytest.mark.metrics, pytest.mark.skipif(
    WHY is not None and not REQUIRED,
    reason=f"the [metrics] extra does not load here ({WHY}); .ci/run runs these tests in a "
    "venv of its own")]

STAND_IN = "cgan-test-stand-in"


def _register_stand_in() -> None:
    """A small fixed random-projection feature extractor, registered as torch-fidelity's
    feature extractors are (nothing is downloaded)."""
    import torch
    import torch_fidelity
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    if STAND_IN in FEATURE_EXTRACTORS_REGISTRY:
        return

    class StandIn(FeatureExtractorBase):
        def __init__(self, name: str, features_list: list[str], **kwargs: object) -> None:
            super().__init__(name, features_list)
            gen = torch.Generator().manual_seed(0)
            self.register_buffer("proj", torch.randn(3 * 8 * 8, 32, generator=gen))

        @staticmethod
        def get_provided_features_list() -> tuple[str, ...]:
            return ("32",)

        @staticmethod
        def get_default_feature_layer_for_metric(metric: str) -> str:
            return "32"

        @staticmethod
        def can_be_compiled() -> bool:
            return False

        @staticmethod
        def get_dummy_input_for_compile() -> None:
            return None

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            assert x.dtype == torch.uint8  # as torch-fidelity hands images over
            pooled = torch.nn.functional.adaptive_avg_pool2d(x.float() / 255, 8).flatten(1)
            return (torch.tanh(pooled @ self.proj * 0.5),)

    torch_fidelity.register_feature_extractor(STAND_IN, StandIn)


def _images(folder: Path, count: int, seed: int, shift: int = 0, size: int = 32) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    for i in range(count):
        base = (x * rng.uniform(2, 6) + y * rng.uniform(2, 6))[..., None] + rng.uniform(
            0, 80, 3)
        img = np.clip(base + rng.normal(0, 12, base.shape) + shift, 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    return folder


def _load(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))]


def test_our_fid_and_kid_equal_torch_fidelitys_for_the_same_images(tmp_path: Path) -> None:
    import torch_fidelity

    from cyclegan_cli.evaluation.standard import StandardMetrics

    _register_stand_in()
    fake = _images(tmp_path / "fake", 12, seed=1, shift=40)
    real = _images(tmp_path / "real", 15, seed=2)
    metrics = StandardMetrics(fid=True, kid=True, features=STAND_IN)
    found, notes = metrics.distances({"model": _load(fake)}, _load(real))
    theirs = torch_fidelity.calculate_metrics(
        input1=str(fake), input2=str(real), fid=True, kid=True, feature_extractor=STAND_IN,
        kid_subset_size=12, verbose=False, cache=False, cuda=False, save_cpu_ram=True)
    assert found["model"].fid == pytest.approx(theirs["frechet_inception_distance"], rel=1e-6)
    assert found["model"].kid == pytest.approx(theirs["kernel_inception_distance_mean"],
                                               rel=1e-6, abs=1e-9)
    assert found["model"].fid > 0.01
    assert metrics.names == (f"FD ({STAND_IN})", f"KD ({STAND_IN})")  # not called FID
    assert metrics.kid_subsets == 100 and metrics.kid_subset_size == 12
    assert any("subsets of 12 images" in n for n in notes)


def test_lpips_matches_the_package_and_is_zero_for_the_same_image(tmp_path: Path) -> None:
    import lpips
    import torch

    from cyclegan_cli.evaluation.standard import StandardMetrics

    a, b = _load(_images(tmp_path / "a", 3, seed=3)), _load(_images(tmp_path / "b", 3, seed=4))
    odd = _load(_images(tmp_path / "odd", 1, seed=5, size=40))  # another size, another batch
    metrics = StandardMetrics(lpips=True, lpips_pretrained_backbone=False)
    scores = metrics.lpips_pairs([(a[0], a[0]), (a[1], b[1]), (odd[0], odd[0]), (a[2], b[2])])
    assert scores[0] == pytest.approx(0.0, abs=1e-6) and scores[2] == pytest.approx(0, abs=1e-6)
    model = metrics._lpips()[0]  # the same network, called as the package documents

    def t(img: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1

    with torch.no_grad():
        direct = float(model(t(a[1]), t(b[1])))
    assert scores[1] == pytest.approx(direct, rel=1e-5) and scores[1] > 0
    assert isinstance(model, lpips.LPIPS)


@pytest.fixture
def onnx_model(tmp_path: Path) -> Path:
    """An ONNX generator that adds 30 to every pixel (values in [-1, 1])."""
    import onnx
    from onnx import TensorProto, helper

    from cyclegan_cli.inference.metadata import ModelInfo

    shift = helper.make_tensor("s", TensorProto.FLOAT, [], [60 / 255])
    graph = helper.make_graph(
        [helper.make_node("Add", ["input", "s"], ["sum"]),
         helper.make_node("Clip", ["sum", "lo", "hi"], ["output"])], "shift",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [shift, helper.make_tensor("lo", TensorProto.FLOAT, [], [-1.0]),
         helper.make_tensor("hi", TensorProto.FLOAT, [], [1.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    info = ModelInfo(direction="AtoB", domain_from="A", domain_to="B", architecture="shift",
                     size_multiple=1)
    onnx.helper.set_model_props(model, info.to_props())
    path = tmp_path / "shift-AtoB.onnx"
    onnx.save(model, path)
    return path


def test_cgan_eval_fid_kid_go_through_torch_fidelity(tmp_path: Path, onnx_model: Path) -> None:
    _register_stand_in()
    inputs = _images(tmp_path / "in", 10, seed=6)
    reference = _images(tmp_path / "ref", 12, seed=7, shift=30)
    result = CliRunner().invoke(app, [
        "eval", "-m", str(onnx_model), str(inputs), "--reference", str(reference), "--fid",
        "--kid", "--fid-features", STAND_IN, "--no-cycle", "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["fid"] is None and report["kid"] is None  # not the standard FID/KID
    assert report["feature_source"] == f"torch-fidelity {STAND_IN}"
    # +30 moves the inputs onto the reference
    assert report["feature_fd"] < report["identity_feature_fd"]
    assert report["kid_subsets"] == 100 and report["kid_subset_size"] == 10
    result = CliRunner().invoke(app, [
        "eval", "-m", str(onnx_model), str(inputs), "--reference", str(reference), "--fid",
        "--fid-features", STAND_IN, "--no-cycle", "--quiet"], env={"COLUMNS": "200"})
    assert f"FD, torch-fidelity {STAND_IN} (not FID)" in result.stdout
    assert "FID (torch-fidelity)" not in result.stdout
    result = CliRunner().invoke(app, [
        "eval", "-m", str(onnx_model), str(inputs), "--reference", str(reference), "--fid",
        "--fid-features", "no-such-extractor", "--quiet"])
    assert result.exit_code == 1 and "has no feature extractor 'no-such-extractor'" in (
        result.output)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_fid_is_one_line_naming_the_file_and_where_it_goes(
        tmp_path: Path, onnx_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch_fidelity.feature_extractor_inceptionv3 as inception

    name = inception.URL_INCEPTION_V3.rsplit("/", 1)[-1]
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty cache
    monkeypatch.setattr(inception, "URL_INCEPTION_V3",  # a refused connection: offline
                        f"http://127.0.0.1:{_closed_port()}/{name}")
    inputs = _images(tmp_path / "in", 3, seed=8)
    result = CliRunner().invoke(app, [
        "eval", "-m", str(onnx_model), str(inputs), "--reference", str(inputs), "--fid",
        "--no-cycle", "--quiet"])
    assert result.exit_code == 1
    # torch's own "Downloading: URL to FILE" line, then ours (the console may wrap it)
    error = result.output[result.output.index("error: "):].replace("\n", "")
    assert error.startswith("error: FID/KID need torch-fidelity's Inception weights")
    assert str(tmp_path / "torch-home" / "hub" / "checkpoints" / name) in error
    assert "Traceback" not in result.output


def test_offline_lpips_is_one_line_naming_where_the_weights_go(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.models._api as api

    from cyclegan_cli.evaluation.standard import StandardMetrics

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    img = _load(_images(tmp_path / "a", 1, seed=9))[0]
    from cyclegan_cli.errors import CganError

    with pytest.raises(CganError, match="LPIPS needs torchvision's AlexNet weights") as caught:
        StandardMetrics(lpips=True).lpips_pairs([(img, img)])
    assert "alexnet-owt" in str(caught.value)
    assert str(tmp_path / "torch-home" / "hub" / "checkpoints") in str(caught.value)
