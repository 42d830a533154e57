"""``cgan export`` and ``cgan translate`` end to end through the CLI."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cyclegan_cli.cli import app
from cyclegan_cli.inference.metadata import ModelInfo
from cyclegan_cli.models import build_generator

runner = CliRunner()
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TINY = ["--ngf", "8", "--ndf", "8", "--net-g", "resnet_6blocks", "--load-size", "36",
        "--crop-size", "32", "--num-workers", "0", "--device", "cpu", "--seed", "1", "--quiet"]


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200", "NO_COLOR": "1"})
    return result, " ".join(ANSI.sub("", result.output).split())


@pytest.fixture(scope="module")
def exported(tiny_data, tmp_path_factory) -> tuple[Path, Path]:
    """A tiny trained run and its two exported generators: (run dir, weights dir)."""
    root = tmp_path_factory.mktemp("exp")
    result, text = invoke("train", tiny_data / "trainA", tiny_data / "trainB", "--runs-dir",
                          root / "runs", "--name", "h2z", "--max-steps", "2", *TINY)
    assert result.exit_code == 0, text
    result, text = invoke("export", root / "runs" / "h2z", "-o", root / "weights")
    assert result.exit_code == 0, text
    assert text.count("max abs diff vs torch") == 2
    return root / "runs" / "h2z", root / "weights"


def test_export_writes_both_directions_with_metadata(exported):
    _, weights = exported
    for direction in ("AtoB", "BtoA"):
        model = onnx.load(weights / f"h2z-{direction}.onnx")
        info = ModelInfo.from_props({p.key: p.value for p in model.metadata_props})
        assert info.direction == direction and info.architecture == "resnet_6blocks"
        assert info.size_multiple == 4 and info.config["ngf"] == 8


def test_export_reference_checkpoint(tmp_path):
    net = build_generator("resnet_6blocks", ngf=4)
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()},
               tmp_path / "latest_net_G_B.pth")
    result, text = invoke("export", tmp_path / "latest_net_G_B.pth", "-o", tmp_path / "w",
                          "--fp16")
    assert result.exit_code == 0, text
    assert "(BtoA)" in text and "fp16" in text
    assert (tmp_path / "w" / "latest_net_G_B.onnx").exists()
    torch.save({"weird.key": torch.zeros(3)}, tmp_path / "bad.pth")
    result, text = invoke("export", tmp_path / "bad.pth", "--direction", "AtoB", "-o",
                          tmp_path / "w")
    assert result.exit_code == 1 and "expected a state dict" in text and "Traceback" not in text


def _photos(folder: Path) -> dict[Path, bytes]:
    """A small tree of test images (odd sizes, RGBA, grayscale) plus a corrupt file."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    (folder / "sub").mkdir()
    Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)).save(folder / "b.png")
    Image.fromarray(rng.integers(0, 256, (40, 30, 4), dtype=np.uint8)).save(
        folder / "sub" / "rgba.png")
    Image.fromarray(rng.integers(0, 256, (24, 32), dtype=np.uint8)).save(
        folder / "sub" / "gray.jpg")
    (folder / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_translate_folder_with_a_corrupt_file(exported, tmp_path):
    _, weights = exported
    before = _photos(tmp_path / "in")
    result, text = invoke("translate", tmp_path / "in", "-m", weights / "h2z-AtoB.onnx",
                          "-o", tmp_path / "out", "--quiet")
    assert result.exit_code == 1, text
    assert "4 written" in text and "1 failed" in text and "broken.jpg" in text
    assert {p: p.read_bytes() for p in before} == before  # inputs untouched
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "a.png", "b.png", "sub/gray.jpg", "sub/rgba.png"]
    assert Image.open(out / "a.png").size == (53, 37)
    rgba_in, rgba_out = Image.open(tmp_path / "in/sub/rgba.png"), Image.open(out / "sub/rgba.png")
    assert rgba_out.mode == "RGBA"
    assert np.array_equal(np.asarray(rgba_in)[..., 3], np.asarray(rgba_out)[..., 3])
    assert Image.open(out / "sub/gray.jpg").mode == "RGB"
    # again with --skip-existing: nothing rewritten, the corrupt file still reported
    stamp = (out / "a.png").stat().st_mtime_ns
    result, text = invoke("translate", tmp_path / "in", "-m", weights / "h2z-AtoB.onnx",
                          "-o", out, "--skip-existing", "--quiet", "--format", "png")
    assert result.exit_code == 1 and "1 written" in text and "3 skipped" in text
    assert (out / "a.png").stat().st_mtime_ns == stamp


def test_translate_matches_a_batch_of_one(exported, tmp_path):
    _, weights = exported
    _photos(tmp_path / "in")
    shutil.rmtree(tmp_path / "in" / "sub")
    outs = {}
    for batch in ("1", "4"):
        result, text = invoke("translate", tmp_path / "in", "-m", weights / "h2z-BtoA.onnx",
                              "--direction", "BtoA", "-o", tmp_path / batch,
                              "--batch-size", batch, "--quiet")
        assert result.exit_code == 0, text
        outs[batch] = np.asarray(Image.open(tmp_path / batch / "a.png"))
    assert np.abs(outs["1"].astype(int) - outs["4"].astype(int)).max() <= 1


def test_translate_errors_are_one_line(exported, tmp_path):
    run, weights = exported
    _photos(tmp_path / "in")
    result, text = invoke("translate", tmp_path / "in", "-m", weights / "h2z-AtoB.onnx",
                          "--direction", "BtoA", "-o", tmp_path / "out")
    assert result.exit_code == 1 and "you asked for BtoA" in text and "Traceback" not in text
    result, text = invoke("translate", tmp_path / "in" / "a.png", "-m",
                          weights / "h2z-BtoA.onnx", "-o", tmp_path / "own", "--quiet")
    assert result.exit_code == 0 and "(BtoA," in text  # an .onnx file's own direction
    result, text = invoke("translate", tmp_path / "in", "-m", weights / "h2z-AtoB.onnx",
                          "-o", tmp_path / "in" / "out")
    assert result.exit_code == 1 and "inside the input folder" in text
    result, text = invoke("translate", tmp_path / "in", "-m", "nope", "-o", tmp_path / "out")
    assert result.exit_code == 1 and "model not found" in text
    assert not (tmp_path / "out").exists()
    result, text = invoke("translate", tmp_path / "in" / "a.png", "-m", "h2z", "--direction",
                          "BtoA", "-o", tmp_path / "named", "--quiet")
    assert result.exit_code == 1 and "model not found" in text  # weights/ here is the cwd's


def test_translate_with_a_run_directory_and_the_torch_backend(exported, tmp_path):
    run, _ = exported
    _photos(tmp_path / "in")
    result, text = invoke("translate", tmp_path / "in" / "a.png", "-m", run, "-o",
                          tmp_path / "out", "--quiet")
    assert result.exit_code == 0, text
    assert Image.open(tmp_path / "out" / "a.png").size == (53, 37)


def test_translate_checkpoint_choice_for_runs(exported, tmp_path):
    """--checkpoint: auto (best, else latest) and latest work on a run without best.pt; best
    is one line naming the file; on a model file it is one line saying what it applies to."""
    run, weights = exported
    _photos(tmp_path / "in")
    outs = {}
    for which in ("auto", "latest", run / "checkpoints" / "latest.pt"):
        out = tmp_path / f"out-{Path(str(which)).stem}.png"
        result, text = invoke("translate", tmp_path / "in" / "a.png", "-m", run, "-o", out,
                              "--checkpoint", which, "--quiet")
        assert result.exit_code == 0, text
        outs[str(which)] = np.asarray(Image.open(out))
    first = next(iter(outs.values()))
    assert all(np.array_equal(first, o) for o in outs.values())
    result, text = invoke("translate", tmp_path / "in" / "a.png", "-m", run, "-o",
                          tmp_path / "b.png", "--checkpoint", "best")
    assert result.exit_code == 1 and "checkpoint not found" in text and "best.pt" in text
    assert "Traceback" not in result.output
    result, text = invoke("translate", tmp_path / "in" / "a.png", "-m",
                          weights / "h2z-AtoB.onnx", "-o", tmp_path / "c.png",
                          "--checkpoint", "latest")
    assert result.exit_code == 1 and "applies to run directories" in text


def test_export_quantize_int8_and_translate_with_it(tmp_path):
    torch.manual_seed(0)
    net = build_generator("resnet_6blocks", ngf=4)
    torch.save(net.state_dict(), tmp_path / "latest_net_G_A.pth")
    result, text = invoke("export", tmp_path / "latest_net_G_A.pth", "-o", tmp_path / "w",
                          "--quantize", "int8")
    assert result.exit_code == 0, text
    assert "dB PSNR vs fp32" in text
    int8 = tmp_path / "w" / "latest_net_G_A-int8.onnx"
    info = ModelInfo.from_props({p.key: p.value for p in onnx.load(int8).metadata_props})
    assert info.precision == "int8" and info.direction == "AtoB"
    Image.fromarray(np.zeros((30, 41, 3), np.uint8)).save(tmp_path / "x.png")
    result, text = invoke("translate", tmp_path / "x.png", "-m", int8, "-o", tmp_path / "o",
                          "--quiet")
    assert result.exit_code == 0, text
    assert Image.open(tmp_path / "o" / "x.png").size == (41, 30)


def test_translate_threads_reach_the_session(exported, tmp_path, monkeypatch):
    from cyclegan_cli.inference import session

    seen: list[int] = []
    original = session.session_options

    def spy(threads=None):
        opts = original(threads)
        seen.append(opts.intra_op_num_threads)
        return opts

    monkeypatch.setattr(session, "session_options", spy)
    _, weights = exported
    Image.new("RGB", (40, 30), (120, 60, 30)).save(tmp_path / "x.png")
    for given, expected in (("1", 1), ("3", 3)):
        result, text = invoke("translate", tmp_path / "x.png", "-m", weights / "h2z-AtoB.onnx",
                              "-o", tmp_path / f"out{given}", "--threads", given, "--quiet")
        assert result.exit_code == 0, text
        assert seen[-1] == expected
    result, text = invoke("translate", tmp_path / "x.png", "-m", weights / "h2z-AtoB.onnx",
                          "-o", tmp_path / "neg", "--threads", "-1")
    assert result.exit_code == 2 and "threads" in text
