"""Static int8 quantization: metadata, inference-core loading, dynamic sizes, PSNR, export_run."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from rich.console import Console

from cyclegan_cli.errors import ExportError
from cyclegan_cli.evaluation.metrics import psnr
from cyclegan_cli.export import (
    export_generator,
    export_run,
    int8_path_for,
    int8_psnr,
    photo_crops,
    quantize_int8,
)
from cyclegan_cli.export.quantize import psnr_warning
from cyclegan_cli.inference import load_model
from cyclegan_cli.inference.metadata import ModelInfo
from cyclegan_cli.models import build_generator
from cyclegan_cli.training.loop import train
from tests.conftest import tiny_config

SIZE = 32


def props(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


@pytest.fixture(scope="module")
def fp32_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    net = build_generator("resnet_6blocks", ngf=8)
    info = ModelInfo("AtoB", "horse", "zebra", "resnet_6blocks", 4, source="tiny",
                     config={"ngf": 8})
    return export_generator(net, info, tmp_path_factory.mktemp("q") / "g.onnx")


@pytest.fixture(scope="module")
def int8_file(fp32_file: Path) -> Path:
    return quantize_int8(fp32_file, int8_path_for(fp32_file), photo_crops(4, SIZE), size=SIZE)


def test_int8_file_keeps_metadata_with_precision_int8(fp32_file: Path, int8_file: Path) -> None:
    assert int8_file == fp32_file.with_name("g-int8.onnx") and int8_file.is_file()
    before, after = props(fp32_file), props(int8_file)
    assert after["cyclegan_cli.precision"] == "int8"
    assert {k: v for k, v in after.items() if k != "cyclegan_cli.precision"} == {
        k: v for k, v in before.items() if k != "cyclegan_cli.precision"}
    ops = {n.op_type for n in onnx.load(str(int8_file)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert not list(int8_file.parent.glob(".*.tmp"))  # atomic write left nothing behind


def test_int8_file_loads_in_the_inference_core_at_odd_sizes(int8_file: Path) -> None:
    t = load_model(int8_file, direction="AtoB", threads=1)
    assert t.info.precision == "int8" and t.info.domain_to == "zebra"
    rng = np.random.default_rng(0)
    for shape in [(37, 45, 3), (64, 48, 3)]:  # odd, and not the calibration size
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        out = t.translate_array(img)
        assert out.shape == img.shape and out.dtype == np.uint8
    batch = t.translate_batch([rng.integers(0, 256, (33, 41, 3), dtype=np.uint8)] * 2)
    assert [b.shape for b in batch] == [(33, 41, 3)] * 2


def test_int8_psnr_is_finite(fp32_file: Path, int8_file: Path) -> None:
    value = int8_psnr(fp32_file, int8_file, n=2, size=SIZE, threads=1)
    assert math.isfinite(value) and value > 5.0


def test_psnr_helpers() -> None:
    a = np.zeros((4, 4, 3), np.uint8)
    assert psnr(a, a) == math.inf
    assert psnr(a, a + 1) == pytest.approx(20 * math.log10(255.0))
    assert psnr_warning(25.0) is not None and psnr_warning(35.0) is None
    assert psnr_warning(math.inf) is None


def _quantized_weight_ops(path: Path) -> set[str]:
    """Op types whose weight (input 1) comes from a DequantizeLinear node."""
    graph = onnx.load(str(path)).graph
    dq = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return {n.op_type for n in graph.node if len(n.input) > 1 and n.input[1] in dq}


def test_upsampling_stays_float_by_default(fp32_file: Path, int8_file: Path,
                                           tmp_path: Path) -> None:
    assert _quantized_weight_ops(int8_file) == {"Conv"}
    every = quantize_int8(fp32_file, tmp_path / "all.onnx", photo_crops(2, SIZE), size=SIZE,
                          float_ops=(), method="minmax")
    assert _quantized_weight_ops(every) == {"Conv", "ConvTranspose"}
    with pytest.raises(ExportError, match="calibration method"):
        quantize_int8(fp32_file, tmp_path / "x.onnx", photo_crops(1, SIZE), size=SIZE,
                      method="median")


def test_quantize_rejects_non_fp32_and_bad_input(fp32_file: Path, int8_file: Path,
                                                 tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="fp32"):
        quantize_int8(int8_file, tmp_path / "again.onnx", photo_crops(1, SIZE), size=SIZE)
    with pytest.raises(ExportError, match="uint8"):
        quantize_int8(fp32_file, tmp_path / "x.onnx", [np.zeros((8, 8), np.float32)],
                      size=SIZE)
    target = tmp_path / "keep.onnx"
    target.write_bytes(b"old")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    with pytest.raises(ExportError):
        quantize_int8(junk, target, photo_crops(1, SIZE), size=SIZE)
    assert target.read_bytes() == b"old"


def test_export_run_int8(tiny_data: Path, tmp_path: Path) -> None:
    console = Console(file=open(os.devnull, "w"), width=200)  # noqa: SIM115
    cfg = tiny_config(tiny_data, tmp_path / "runs", ngf=8, max_steps=2)
    run_dir = train(cfg, console=console, quiet=True).run_dir
    (result,) = export_run(run_dir, "AtoB", out_dir=tmp_path / "w", name="m", int8=True,
                           calibration_images=photo_crops(2, SIZE), calibration_size=SIZE)
    assert result.int8_path == tmp_path / "w" / "m-AtoB-int8.onnx"
    assert result.int8_psnr is not None and math.isfinite(result.int8_psnr)
    worst_name, worst = result.int8_report.worst
    assert result.int8_psnr == pytest.approx(result.int8_report.mean)
    assert (worst < 30) == bool(result.warnings)  # the worst image decides, not the mean
    if result.warnings:
        assert worst_name in result.warnings[0]
    assert load_model(result.int8_path, threads=1).info.precision == "int8"


def test_int8_report_names_the_worst_image_and_measures_512(fp32_file: Path,
                                                           int8_file: Path) -> None:
    from cyclegan_cli.export.quantize import int8_report

    crops = photo_crops(3, SIZE, seed=7)
    flat = np.full((SIZE, SIZE, 3), 128, np.uint8)
    report = int8_report(fp32_file, int8_file, [("a", crops[0]), ("flat grey", flat),
                                                ("c", crops[2])], large=64, n_large=1,
                         threads=1)
    values = dict(report.per_image)
    assert report.worst == min(report.per_image, key=lambda item: item[1])
    assert report.mean == pytest.approx(np.mean([v for v in values.values()
                                                 if math.isfinite(v)]))
    assert report.large is not None and math.isfinite(report.large)
    text = report.describe()
    assert f"worst {report.worst[1]:.1f} dB, {report.worst[0]}" in text and "512²:" in text
    assert psnr_warning(19.0, what="held-out crop 3 (256²)") == (
        "int8 output is 19.0 dB PSNR from fp32 on held-out crop 3 (256²) (below 30 dB): "
        "visible quality loss; prefer the fp32 file")


def test_quantizing_keeps_onnx_runtimes_chatter_out_of_the_terminal(
        fp32_file: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    import logging
    import sys

    # as an application that logs would have it: the root logger prints warnings to stderr
    handler = logging.StreamHandler(sys.stderr)
    logging.root.addHandler(handler)
    try:
        logging.getLogger().warning("the handler works")
        assert "the handler works" in capfd.readouterr().err
        quantize_int8(fp32_file, tmp_path / "quiet.onnx", photo_crops(2, SIZE), size=SIZE)
        out, err = capfd.readouterr()
    finally:
        logging.root.removeHandler(handler)
    assert out == "" and err == "", (out, err)
    assert logging.root.manager.disable == logging.NOTSET  # the caller's setting is back


def test_int8_report_benchmark_at_toy_size(fp32_file: Path) -> None:
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, str(root / "benchmarks" / "int8_report.py"),
                          "--model", str(fp32_file), "--crops", "2", "--size", str(SIZE),
                          "--large", "0"], capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(root), "PATH": "", "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert len(result["per_image_db"]) == 2 and result["worst"] in result["per_image_db"]
    assert result["worst_db"] <= result["mean_db"] and result["large_db"] is None
