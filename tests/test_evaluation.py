"""`cgan eval`: metrics computed by hand, the evaluation runner and the command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

from cyclegan_cli.cli import app
from cyclegan_cli.evaluation import (
    colour_swd,
    frechet_distance,
    gaussian_stats,
    kernel_distance,
    psnr,
    ssim,
)
from cyclegan_cli.evaluation.evaluate import evaluate
from cyclegan_cli.evaluation.features import FeatureModel
from cyclegan_cli.evaluation.report import print_report
from cyclegan_cli.export import export_generator
from cyclegan_cli.inference import ModelInfo, load_model
from cyclegan_cli.models import build_generator


def gradient(h: int = 40, w: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 3, y * 4, (x + y) * 2], axis=-1) + rng.integers(0, 20, (h, w, 3))
    return np.clip(base + 20, 20, 220).astype(np.uint8)


# -- metrics ----------------------------------------------------------------------------------
def test_psnr_by_hand():
    a = gradient()
    b = a + 10  # no overflow: values <= 230
    assert psnr(b, a) == pytest.approx(10 * math.log10(255 ** 2 / 100))  # 28.13 dB
    assert psnr(a, a) == math.inf
    with pytest.raises(ValueError):
        psnr(a, a[:10])


def test_ssim_is_one_for_equal_images_and_drops_with_noise():
    a = gradient()
    noisy = np.clip(a + np.random.default_rng(1).normal(0, 25, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    assert 0 < ssim(noisy, a) < 0.9
    assert ssim(a[:5, :5], a[:5, :5]) == pytest.approx(1.0)  # small images: smaller window


def test_frechet_distance_of_known_gaussians():
    # 1-D: (0-3)^2 + 1 + 4 - 2*sqrt(1*4) = 10
    assert frechet_distance(np.array([0.0]), np.array([[1.0]]), np.array([3.0]),
                            np.array([[4.0]])) == pytest.approx(10.0)
    # diagonal: sum over dimensions of (mu1-mu2)^2 + (s1-s2)^2 (s = standard deviations)
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 1.0])
    expected = float(((mu1 - mu2) ** 2 + (s1 - s2) ** 2).sum())  # 1+0+4 + 1+0+4 = 10
    assert frechet_distance(mu1, np.diag(s1 ** 2), mu2, np.diag(s2 ** 2)) == pytest.approx(
        expected)
    # rotation-invariant: the same Gaussians in a rotated basis
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    got = frechet_distance(q @ mu1, q @ np.diag(s1 ** 2) @ q.T, q @ mu2,
                           q @ np.diag(s2 ** 2) @ q.T)
    assert got == pytest.approx(expected)
    # from samples: close to the true value
    rng = np.random.default_rng(2)
    x = rng.normal(mu1, s1, size=(200_000, 3))
    y = rng.normal(mu2, s2, size=(200_000, 3))
    assert frechet_distance(*gaussian_stats(x), *gaussian_stats(y)) == pytest.approx(
        expected, rel=0.02)


def test_kid_by_hand():
    # d = 1, k(a, b) = (ab + 1)^3; x = {0, 1}, y = {0, 2}
    # k_xx off-diagonal mean 1, k_yy 1, k_xy mean (1 + 1 + 1 + 27) / 4 = 7.5 -> 1 + 1 - 15
    mean, std = kernel_distance(np.array([[0.0], [1.0]]), np.array([[0.0], [2.0]]),
                                          subsets=3, subset_size=2)
    assert mean == pytest.approx(-13.0) and std == pytest.approx(0.0)
    rng = np.random.default_rng(0)
    same = kernel_distance(rng.normal(size=(400, 8)), rng.normal(size=(400, 8)),
                                     subset_size=200)[0]
    shifted = kernel_distance(rng.normal(size=(400, 8)),
                                        rng.normal(1.0, size=(400, 8)), subset_size=200)[0]
    assert abs(same) < 0.05 < shifted


def test_colour_swd():
    black = [np.zeros((16, 16, 3), np.uint8)]
    shifted = [np.full((16, 16, 3), (30, 40, 0), np.uint8)]
    assert colour_swd(black, black) == 0.0
    # constant colours 50 apart: |u . v| averaged over random unit u is 50 / 2
    assert colour_swd(black, shifted, samples=256, projections=4000) == pytest.approx(
        25.0, rel=0.05)


# -- the runner -------------------------------------------------------------------------------
class Add:
    """A stand-in generator: adds a constant."""

    def __init__(self, value: int) -> None:
        self.value = value

    def translate_array(self, arr: np.ndarray) -> np.ndarray:
        return np.clip(arr.astype(int) + self.value, 0, 255).astype(np.uint8)


@pytest.fixture()
def paired(tmp_path: Path) -> tuple[Path, Path]:
    a, t = tmp_path / "testA", tmp_path / "truth"
    a.mkdir()
    t.mkdir()
    for i in range(4):
        img = gradient(seed=i)
        Image.fromarray(img).save(a / f"{i}.png")
        Image.fromarray(img + 10).save(t / f"{i}.png")
    return a, t


def test_paired_evaluation_with_identity_baseline(paired, tmp_path):
    a, t = paired
    (a / "bad.png").write_bytes(b"not a png")
    Image.fromarray(gradient(seed=9)).save(a / "lonely.png")  # no ground truth
    inputs = sorted(a.iterdir())
    report = evaluate(Add(10), inputs, target=t, backward=Add(-10),
                      sheet=tmp_path / "sheet.png", sheet_count=2)
    s = report.summary()
    assert len(report.images) == 4 and {Path(f).name for f, _ in report.failed} == {
        "bad.png", "lonely.png"}
    assert s["psnr"]["mean"] == math.inf and s["ssim"]["mean"] == pytest.approx(1.0)
    assert s["identity_psnr"]["mean"] == pytest.approx(28.13, abs=0.01)
    assert s["identity_psnr"]["median"] == pytest.approx(28.13, abs=0.01)
    assert s["cycle_psnr"]["mean"] == math.inf
    wrong = evaluate(Add(-10), inputs[:4], target=t).summary()
    assert wrong["psnr"]["mean"] < wrong["identity_psnr"]["mean"]  # the metric can fail
    sheet = Image.open(tmp_path / "sheet.png")
    assert sheet.height > 2 * 192 and sheet.width > 3 * 192  # 2 rows of input|output|target
    data = json.loads(json.dumps(report.to_dict()))  # valid JSON: infinities become null
    assert data["summary"]["psnr"]["mean"] is None and len(data["images"]) == 4


def test_unpaired_evaluation(paired, tmp_path):
    a, t = paired
    report = evaluate(Add(10), sorted(a.iterdir()), reference=t)
    assert report.colour_swd is not None and report.identity_colour_swd is not None
    assert report.colour_swd < 1.0 < report.identity_colour_swd  # +10 matches the reference


def feature_model(path: Path) -> Path:
    """A tiny ONNX 'Inception': mean colour per channel (3-d features), 32x32 input."""
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["x"], ["p"]),
         helper.make_node("Flatten", ["p"], ["f"])], "features",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("f", TensorProto.FLOAT, ["N", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


def test_fd_kd_through_a_local_feature_model_are_not_called_fid(paired, tmp_path):
    a, t = paired
    feats = FeatureModel(feature_model(tmp_path / "f.onnx"))
    imgs = [np.full((8, 8, 3), v, np.uint8) for v in (0, 255)]
    np.testing.assert_allclose(feats.features(imgs), [[-1, -1, -1], [1, 1, 1]], atol=1e-6)
    report = evaluate(Add(10), sorted(a.iterdir()), reference=t, features=feats)
    assert report.feature_fd is not None and report.identity_feature_fd is not None
    assert report.feature_fd < report.identity_feature_fd and report.feature_kd is not None
    assert report.fid is None and report.kid is None  # the standard names stay free
    console = Console(record=True, width=120)
    print_report(report, console)
    text = console.export_text()
    assert "FD, local model f.onnx (not FID)" in text and "FID (" not in text
    with pytest.raises(Exception, match="not found"):
        FeatureModel(tmp_path / "missing.onnx")


# -- the command ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_pair(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    for direction, (src, dst) in (("AtoB", ("a", "b")), ("BtoA", ("b", "a"))):
        torch.manual_seed(0)
        net = build_generator("resnet_6blocks", ngf=8).eval()
        info = ModelInfo(direction=direction, domain_from=src, domain_to=dst,
                         architecture="resnet_6blocks", size_multiple=4, version="test")
        export_generator(net, info, folder / f"tiny-{direction}.onnx")
    return folder


def test_eval_command_json_sheet_and_exit_code(paired, model_pair, tmp_path):
    a, t = paired
    runner = CliRunner()
    result = runner.invoke(app, ["eval", "-m", str(model_pair / "tiny-AtoB.onnx"), str(a),
                                 "--target", str(t), "--json", "--sheet",
                                 str(tmp_path / "s.png")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["summary"]["identity_psnr"]["mean"] == pytest.approx(28.13, abs=0.01)
    assert data["summary"]["cycle_psnr"]["count"] == 4  # found tiny-BtoA.onnx beside it
    assert (tmp_path / "s.png").is_file()
    (a / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    result = runner.invoke(app, ["eval", "-m", str(model_pair / "tiny-AtoB.onnx"), str(a),
                                 "--target", str(t), "-q"])
    assert result.exit_code == 1
    assert "broken.jpg" in result.output and "PSNR" in result.output
    result = runner.invoke(app, ["eval", "-m", str(model_pair / "tiny-AtoB.onnx"), str(a),
                                 "--target", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "Traceback" not in result.output


# -- cgan train --eval-every ------------------------------------------------------------------
def _train(cfg, **kw):
    import io

    from rich.console import Console

    from cyclegan_cli.training.loop import train

    return train(cfg, console=Console(file=io.StringIO()), quiet=True, **kw)


def _negatives(folder: Path, out: Path) -> Path:
    """``folder``'s images as colour negatives: a target the untouched input scores badly
    against (so even a barely trained generator beats it)."""
    out.mkdir()
    for f in sorted(folder.glob("*.png")):
        Image.fromarray(255 - np.asarray(Image.open(f).convert("RGB"))).save(out / f.name)
    return out


def test_train_eval_every_logs_scores_and_keeps_best(tiny_data, tmp_path):
    import csv

    from cyclegan_cli.rundir import load_checkpoint

    from .conftest import tiny_config

    target = _negatives(tiny_data / "testA", tmp_path / "negatives")
    # the reference math: its generators start from random weights, so they leave the
    # untouched input at once (residual ones start as the identity)
    cfg = tiny_config(tiny_data, tmp_path, max_steps=6, eval_every=2, recipe="reference",
                      eval_a=str(tiny_data / "testA"), eval_target=str(target))
    result = _train(cfg)
    rows = list(csv.DictReader((result.run_dir / "eval.csv").open()))
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    assert {r["metric"] for r in rows} == {"psnr"} and all(r["images"] == "4" for r in rows)
    # the identity baseline is the same at every evaluation, and it is the real one
    ident = {float(r["identity"]) for r in rows}
    assert len(ident) == 1
    assert all(float(r["median"]) > float(r["identity_median"]) for r in rows)
    best = result.run_dir / "checkpoints" / "best.pt"
    assert best.is_file()
    best_row = max(rows, key=lambda r: float(r["median"]))  # best by the median
    assert load_checkpoint(best)["trainer"]["global_step"] == int(best_row["step"])
    # cgan export picks best.pt by itself (--checkpoint auto) and scores what eval.csv says
    out = tmp_path / "best-weights"
    exported = CliRunner().invoke(app, ["export", str(result.run_dir),
                                        "--direction", "AtoB", "-o", str(out),
                                        "--domain-from", "photo", "--domain-to", "negative"])
    assert exported.exit_code == 0, exported.output
    info = load_model(out / "tiny-AtoB.onnx").info
    assert (info.domain_from, info.domain_to) == ("photo", "negative")
    one_name = CliRunner().invoke(app, ["export", str(result.run_dir), "-o", str(out),
                                        "--domain-from", "photo"])
    assert one_name.exit_code == 1 and "--domain-to" in one_name.output
    again = CliRunner().invoke(app, ["eval", "-m", str(out / "tiny-AtoB.onnx"),
                                     str(tiny_data / "testA"), "--target", str(target),
                                     "--json", "--no-cycle"])
    summary = json.loads(again.stdout)["summary"]["psnr"]
    assert summary["mean"] == pytest.approx(float(best_row["value"]), abs=0.02)
    assert summary["median"] == pytest.approx(float(best_row["median"]), abs=0.02)
    # cgan eval on the run folder: best by default, latest when asked
    scores = {}
    for which in ("auto", "best", "latest"):
        got = CliRunner().invoke(app, ["eval", "-m", str(result.run_dir), str(tiny_data /
                                       "testA"), "--target", str(target), "--json",
                                       "--no-cycle", "--checkpoint", which])
        assert got.exit_code == 0, got.output
        scores[which] = json.loads(got.stdout)["summary"]["psnr"]["median"]
    assert scores["auto"] == scores["best"] == pytest.approx(float(best_row["median"]),
                                                             abs=0.02)
    assert scores["latest"] == pytest.approx(float(rows[-1]["median"]), abs=0.02)
    # resume: rows after the checkpoint are dropped and the best is remembered
    _train(None, resume=result.run_dir, overrides={"max_steps": 8})
    rows = list(csv.DictReader((result.run_dir / "eval.csv").open()))
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 8]


def test_best_is_never_the_untouched_input(tiny_data, tmp_path):
    """Scored against the input itself (the identity is perfect), no checkpoint is named best,
    the log says why, and --checkpoint best is an error naming the file."""
    import csv
    import io

    from rich.console import Console

    from cyclegan_cli.training.loop import train

    from .conftest import tiny_config

    cfg = tiny_config(tiny_data, tmp_path, max_steps=4, eval_every=2,
                      eval_a=str(tiny_data / "testA"), eval_target=str(tiny_data / "testA"))
    log = io.StringIO()
    result = train(cfg, console=Console(file=log, width=200), quiet=True)
    rows = list(csv.DictReader((result.run_dir / "eval.csv").open()))
    assert len(rows) == 2 and all(r["identity_median"] == "inf" for r in rows)
    assert not (result.run_dir / "checkpoints" / "best.pt").exists()
    text = log.getvalue()
    assert "untouched input inf" in text and "not kept as best" in text and "SSIM" in text
    got = CliRunner().invoke(app, ["export", str(result.run_dir), "--checkpoint", "best",
                                   "-o", str(tmp_path / "w")])
    assert got.exit_code == 1 and "best.pt" in got.output and "untouched input" in got.output
    auto = CliRunner().invoke(app, ["export", str(result.run_dir), "-o", str(tmp_path / "w")])
    assert auto.exit_code == 0, auto.output  # auto: latest, as there is no best


def test_eval_subset_is_spread_and_seeded():
    from cyclegan_cli.training.evaluator import eval_subset

    files = [Path(f"{i:03d}.png") for i in range(100)]
    picked = eval_subset(files, 10, seed=3)
    assert len(picked) == 10 == len(set(picked)) and picked == eval_subset(files, 10, seed=3)
    numbers = [int(p.stem) for p in picked]
    assert numbers == sorted(numbers) and numbers[0] < 10 and numbers[-1] >= 90
    assert all(9 <= b - a <= 11 for a, b in zip(numbers, numbers[1:], strict=False))
    offsets = {eval_subset(files, 10, seed=s)[0] for s in range(10)}
    assert len(offsets) >= 3  # the seed moves the offset
    assert eval_subset(files[:5], 10, seed=3) == files[:5]


def test_train_eval_without_target_uses_cycle_and_checks_folder(tiny_data, tmp_path):
    import csv

    from cyclegan_cli.errors import CganError

    from .conftest import tiny_config

    cfg = tiny_config(tiny_data, tmp_path, max_steps=2, eval_every=2,
                      eval_a=str(tiny_data / "testA"))
    result = _train(cfg)
    rows = list(csv.DictReader((result.run_dir / "eval.csv").open()))
    assert rows[0]["metric"] == "cycle_psnr" and float(rows[0]["value"]) > 0
    with pytest.raises(CganError, match="eval-a"):
        tiny_config(tiny_data, tmp_path, eval_every=2).validate()
    bad = tiny_config(tiny_data, tmp_path, name="nofolder", eval_every=2,
                      eval_a=str(tmp_path / "missing"))
    with pytest.raises(CganError, match="not found"):
        _train(bad)
    assert not (tmp_path / "nofolder").exists()  # nothing written before the check


# -- cgan models and the model folders --------------------------------------------------------
def test_models_lists_user_folder_and_names_resolve(model_pair, tmp_path, monkeypatch):
    import shutil

    from cyclegan_cli.inference.resolve import model_dirs, opposite_model, resolve_model

    user = tmp_path / "user-models"
    user.mkdir()
    for f in model_pair.glob("*.onnx"):
        shutil.copy(f, user / f.name)
    (user / "broken-AtoB.onnx").write_bytes(b"junk")
    monkeypatch.setenv("CGAN_MODELS", str(user))
    monkeypatch.chdir(tmp_path)  # no ./weights here
    assert user in model_dirs()
    assert resolve_model("tiny", "BtoA") == (user / "tiny-BtoA.onnx", "onnx")
    assert opposite_model(user / "tiny-AtoB.onnx", "AtoB") == (user / "tiny-BtoA.onnx", "onnx")
    assert opposite_model("tiny", "AtoB") == (user / "tiny-BtoA.onnx", "onnx")
    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    by_file = {Path(m["file"]).name: m for m in data["models"]}
    assert by_file["tiny-AtoB.onnx"]["name"] == "tiny"
    assert (by_file["tiny-BtoA.onnx"]["domain_from"], by_file["tiny-BtoA.onnx"]["domain_to"]) \
        == ("b", "a")
    assert by_file["broken-AtoB.onnx"]["problem"]
    table = CliRunner().invoke(app, ["models"])
    assert table.exit_code == 0 and "tiny" in table.output and "unusable" in table.output
    pics = tmp_path / "pics"
    pics.mkdir()
    Image.fromarray(gradient()).save(pics / "p.png")
    missing = CliRunner().invoke(app, ["translate", "-m", "nosuch", str(pics), "-o",
                                       str(tmp_path / "out")])
    assert missing.exit_code == 1 and "tiny" in missing.output.split("known models:")[1]
    by_file_name = CliRunner().invoke(app, ["translate", "-m", "tiny-AtoB.onnx", str(pics),
                                            "-o", str(tmp_path / "out"), "--quiet"])
    assert by_file_name.exit_code == 0, by_file_name.output  # found in the user folder


@pytest.mark.parametrize(("flag", "module"), [("--fid", "torch_fidelity"), ("--lpips", "lpips")])
def test_standard_metrics_without_their_extra_say_which_to_install(
        paired, model_pair, flag, module, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    a, t = paired
    result = CliRunner().invoke(app, ["eval", "-m", str(model_pair / "tiny-AtoB.onnx"), str(a),
                                      "--target", str(t),
                                      "--reference", str(t), flag, "--quiet"])
    assert result.exit_code == 1
    assert "pip install 'cyclegan-cli[metrics]'" in result.output.replace("\n", "")
    assert "Traceback" not in result.output
