"""The CPU graph rewrites (Winograd 3×3 convolutions, sub-pixel transposed convolutions)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from cyclegan_cli.export import export_generator
from cyclegan_cli.export.onnx_export import fp16_path_for
from cyclegan_cli.inference import ModelInfo, load_model
from cyclegan_cli.inference.cpu_graph import optimize_for_cpu, subpixel_weights
from cyclegan_cli.inference.session import (
    REWRITE_MAX_THREADS,
    cpu_optimized_bytes,
    cpu_rewrite_enabled,
    make_session,
)
from cyclegan_cli.models import build_generator


def run(model: onnx.ModelProto | bytes, x: np.ndarray) -> np.ndarray:
    data = model if isinstance(model, bytes) else model.SerializeToString()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def single_node(op: str, weight: np.ndarray, bias: np.ndarray | None, **attrs: object
                ) -> onnx.ModelProto:
    inputs = ["x", "w"] + (["b"] if bias is not None else [])
    inits = [numpy_helper.from_array(weight, "w")]
    if bias is not None:
        inits.append(numpy_helper.from_array(bias, "b"))
    channels = weight.shape[0] if op == "ConvTranspose" else weight.shape[1]
    graph = helper.make_graph(
        [helper.make_node(op, inputs, ["y"], **attrs)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", channels, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def torch_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, pads: list[int]) -> np.ndarray:
    xt = torch.from_numpy(x).double()
    xt = torch.nn.functional.pad(xt, (pads[1], pads[3], pads[0], pads[2]))
    bt = None if b is None else torch.from_numpy(b).double()
    return torch.nn.functional.conv2d(xt, torch.from_numpy(w).double(), bt).numpy()


@pytest.mark.parametrize("pads", [[0, 0, 0, 0], [1, 1, 1, 1], [0, 2, 1, 0]])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("hw", [(6, 6), (9, 13), (16, 20), (3, 31)])
def test_winograd_conv_matches_direct_convolution(pads: list[int], with_bias: bool,
                                                  hw: tuple[int, int]) -> None:
    rng = np.random.default_rng(hash((tuple(pads), with_bias, hw)) % 2**32)
    w = (rng.standard_normal((40, 32, 3, 3)) * 0.1).astype(np.float32)
    b = rng.standard_normal(40).astype(np.float32) if with_bias else None
    model = single_node("Conv", w, b, kernel_shape=[3, 3], pads=pads)
    optimized, report = optimize_for_cpu(model)
    assert len(report.winograd) == 1 and not report.subpixel
    assert "Conv" in {n.op_type for n in optimized.graph.node}  # the input transform only
    assert "MatMul" in {n.op_type for n in optimized.graph.node}
    x = rng.standard_normal((2, 32, *hw)).astype(np.float32)
    ref = torch_conv(x, w, b, pads)
    got = run(optimized, x)
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())


def test_subpixel_matches_conv_transpose() -> None:
    rng = np.random.default_rng(1)
    w = rng.standard_normal((24, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    model = single_node("ConvTranspose", w, b, kernel_shape=[3, 3], strides=[2, 2],
                        pads=[1, 1, 1, 1], output_padding=[1, 1])
    optimized, report = optimize_for_cpu(model)
    assert len(report.subpixel) == 1
    assert "ConvTranspose" not in {n.op_type for n in optimized.graph.node}
    x = rng.standard_normal((2, 24, 5, 7)).astype(np.float32)
    ref = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x).double(), torch.from_numpy(w).double(), torch.from_numpy(b).double(),
        stride=2, padding=1, output_padding=1).numpy()
    got = run(optimized, x)
    assert got.shape == ref.shape == (2, 16, 10, 14)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)
    w4, b4 = subpixel_weights(w, None)
    assert w4.shape == (64, 24, 2, 2) and b4 is None


def test_nodes_that_do_not_fit_are_left_alone() -> None:
    rng = np.random.default_rng(2)
    narrow = single_node("Conv", rng.standard_normal((8, 8, 3, 3)).astype(np.float32), None,
                         kernel_shape=[3, 3])
    strided = single_node("Conv", rng.standard_normal((64, 64, 3, 3)).astype(np.float32), None,
                          kernel_shape=[3, 3], strides=[2, 2])
    grouped = single_node("Conv", rng.standard_normal((64, 32, 3, 3)).astype(np.float32), None,
                          kernel_shape=[3, 3], group=2)
    five = single_node("Conv", rng.standard_normal((64, 64, 5, 5)).astype(np.float32), None,
                       kernel_shape=[5, 5])
    half = single_node("Conv", rng.standard_normal((64, 64, 3, 3)).astype(np.float16), None,
                       kernel_shape=[3, 3])
    for model in (narrow, strided, grouped, five, half):
        out, report = optimize_for_cpu(model)
        assert not report.changed and out is model


@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory: pytest.TempPathFactory):
    torch.manual_seed(0)
    net = build_generator("resnet_6blocks", ngf=8).eval()  # 32 channels in the blocks
    with torch.no_grad():  # non-zero biases so a lost bias would show
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d) and m.bias is not None:
                m.bias.normal_(0, 0.1)
    info = ModelInfo(direction="AtoB", domain_from="a", domain_to="b",
                     architecture="resnet_6blocks", size_multiple=4, version="test")
    path = export_generator(net, info, tmp_path_factory.mktemp("cpu_graph") / "g.onnx")
    return net, path


@pytest.mark.parametrize("hw", [(8, 8), (36, 52), (68, 44), (64, 64)])
def test_rewritten_generator_matches_torch(resnet_file, hw: tuple[int, int]) -> None:
    net, path = resnet_file
    data = cpu_optimized_bytes(path)
    assert data is not None
    report = optimize_for_cpu(onnx.load(path))[1]
    assert len(report.winograd) == 12 and len(report.subpixel) == 2
    x = (np.random.default_rng(3).random((2, 3, *hw), dtype=np.float32) * 2 - 1)
    with torch.inference_mode():
        ref = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run(data, x), ref, atol=1e-4)


def test_make_session_rewrites_on_cpu_only_and_can_be_turned_off(resnet_file, monkeypatch
                                                                 ) -> None:
    _, path = resnet_file
    rewritten = make_session(path, providers=["CPUExecutionProvider"], cpu_rewrite=True)
    plain = make_session(path, providers=["CPUExecutionProvider"], cpu_rewrite=False)
    monkeypatch.setenv("CGAN_CPU_REWRITE", "0")
    from_env = make_session(path, providers=["CPUExecutionProvider"], threads=1)
    x = (np.random.default_rng(4).random((1, 3, 40, 24), dtype=np.float32) * 2 - 1)
    a, b, c = (s.run(None, {"input": x})[0] for s in (rewritten, plain, from_env))
    np.testing.assert_array_equal(b, c)
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert not np.array_equal(a, b)  # a different graph ran
    # The translator gives the same uint8 image either way (to within one level).
    img = np.random.default_rng(5).integers(0, 256, (30, 46, 3), dtype=np.uint8)
    fast = load_model(path, providers=["CPUExecutionProvider"], cpu_rewrite=True)
    slow = load_model(path, providers=["CPUExecutionProvider"], cpu_rewrite=False)
    diff = np.abs(fast.translate_array(img).astype(int) - slow.translate_array(img).astype(int))
    assert diff.max() <= 1


def test_rewrite_default_depends_on_threads_and_environment(monkeypatch) -> None:
    monkeypatch.delenv("CGAN_CPU_REWRITE", raising=False)
    assert cpu_rewrite_enabled(2) and cpu_rewrite_enabled(REWRITE_MAX_THREADS)
    assert not cpu_rewrite_enabled(REWRITE_MAX_THREADS + 1)
    monkeypatch.setenv("CGAN_CPU_REWRITE", "1")
    assert cpu_rewrite_enabled(64)
    monkeypatch.setenv("CGAN_CPU_REWRITE", "0")
    assert not cpu_rewrite_enabled(1)


def test_fp16_and_non_onnx_files_are_not_rewritten(resnet_file, tmp_path) -> None:
    net, path = resnet_file
    info = ModelInfo(direction="AtoB", domain_from="a", domain_to="b",
                     architecture="resnet_6blocks", size_multiple=4, version="test")
    half = export_generator(net, info, fp16_path_for(tmp_path / "g.onnx"), fp16=True)
    assert cpu_optimized_bytes(half) is None
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    assert cpu_optimized_bytes(junk) is None
