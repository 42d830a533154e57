"""Planning where translations go: mirrored trees, formats, and never touching the inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cyclegan_cli.errors import CganError
from cyclegan_cli.inference.files import plan_jobs, save_image
from cyclegan_cli.inference.resolve import resolve_model

pytestmark = pytest.mark.torchfree  # runs in an install without torch


def _img(path: Path, size=(20, 12)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (10, 200, 30)).save(path)
    return path


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "in"
    for rel in ("a.png", "sub/b.jpg", "sub/deeper/c.PNG", ".hidden/d.png"):
        _img(root / rel)
    (root / "notes.txt").write_text("x")
    return root


def test_folders_are_mirrored_and_files_keep_their_names(tree, tmp_path):
    single = _img(tmp_path / "single.webp")
    jobs = plan_jobs([tree, single], tmp_path / "out")
    got = {j.src.relative_to(tmp_path).as_posix(): j.dst.relative_to(tmp_path).as_posix()
           for j in jobs}
    assert got == {"in/a.png": "out/a.png", "in/sub/b.jpg": "out/sub/b.jpg",
                   "in/sub/deeper/c.PNG": "out/sub/deeper/c.PNG",
                   "single.webp": "out/single.webp"}


def test_format_changes_the_suffix(tree, tmp_path):
    jobs = plan_jobs([tree], tmp_path / "out", fmt="PNG")
    assert {j.dst.suffix for j in jobs} == {".png"}
    with pytest.raises(CganError, match="unknown --format"):
        plan_jobs([tree], tmp_path / "out", fmt="gif")


def test_inputs_are_never_overwritten(tree, tmp_path):
    with pytest.raises(CganError, match="inside the input folder"):
        plan_jobs([tree], tree / "out")
    jobs = plan_jobs([tree], tree / "out", allow_inside_input=True)
    assert all("out" not in j.src.relative_to(tree).parts for j in jobs)
    with pytest.raises(CganError, match="refusing to overwrite the input"):
        plan_jobs([tree], tree, allow_inside_input=True)
    with pytest.raises(CganError, match="refusing to overwrite the input"):
        plan_jobs([tree / "a.png"], tree)


def test_collisions_and_missing_inputs_are_errors(tree, tmp_path):
    other = _img(tmp_path / "other" / "a.png")
    with pytest.raises(CganError, match="would both be written"):
        plan_jobs([tree, other], tmp_path / "out")
    with pytest.raises(CganError, match="input not found"):
        plan_jobs([tmp_path / "nope.png"], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CganError, match="no images"):
        plan_jobs([tmp_path / "empty"], tmp_path / "out")


def test_save_image_is_atomic_and_drops_alpha_only_where_needed(tmp_path):
    rgba = Image.fromarray(np.full((8, 8, 4), 128, np.uint8), "RGBA")
    save_image(rgba, tmp_path / "x.png")
    save_image(rgba, tmp_path / "x.jpg")
    assert Image.open(tmp_path / "x.png").mode == "RGBA"
    assert Image.open(tmp_path / "x.jpg").mode == "RGB"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jpg", "x.png"]


def test_resolve_model_by_file_run_and_name(tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "h2z-AtoB.onnx").write_bytes(b"x")
    assert resolve_model("h2z", "AtoB", weights) == (weights / "h2z-AtoB.onnx", "onnx")
    assert resolve_model(weights / "h2z-AtoB.onnx", "BtoA", weights)[1] == "onnx"
    run = tmp_path / "runs" / "h2z"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    assert resolve_model(run, "AtoB", weights) == (weights / "h2z-AtoB.onnx", "onnx")
    assert resolve_model(run, "BtoA", weights) == (run, "torch")
    with pytest.raises(CganError, match="model not found: zebra; known models: h2z"):
        resolve_model("zebra", "AtoB", weights)
    with pytest.raises(CganError, match="not a run directory"):
        resolve_model(weights, "AtoB", weights)


def test_resolve_file_names_in_model_folders_and_suggest_names(tmp_path, monkeypatch) -> None:
    """A file name from `cgan models` works as --model from any folder; a near miss gets
    the names it may have meant; with no models at all the message says how to get one."""
    weights = tmp_path / "weights"
    weights.mkdir()
    for name in ("horse2zebra-AtoB.onnx", "horse2zebra-BtoA.onnx", "summer2winter-AtoB.onnx"):
        (weights / name).write_bytes(b"x")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert resolve_model("horse2zebra-BtoA.onnx", "BtoA", weights) == \
        (weights / "horse2zebra-BtoA.onnx", "onnx")
    with pytest.raises(CganError, match="model not found"):  # a path is that path, no other
        resolve_model(tmp_path / "gone" / "horse2zebra-BtoA.onnx", "BtoA", weights)
    with pytest.raises(CganError) as err:
        resolve_model("hors2zebra", "AtoB", weights)
    assert "did you mean horse2zebra?" in str(err.value)
    assert "known models: horse2zebra, summer2winter" in str(err.value)
    empty = tmp_path / "empty"  # (the shipped models are one of the folders otherwise)
    empty.mkdir()
    monkeypatch.setenv("CGAN_MODELS", str(tmp_path / "user"))
    with pytest.raises(CganError) as err:
        resolve_model("golden_hour", "AtoB", empty)
    text = str(err.value)
    assert "no models are installed yet" in text and "cgan models pull" in text
    assert "cgan export RUN" in text and str(tmp_path / "user") in text and "\n" not in text


def test_shards_cover_every_input_exactly_once() -> None:
    import random

    from cyclegan_cli.inference.files import take_shard

    rng = random.Random(0)
    for n_items in (0, 1, 7, 50):
        items = [f"dir{rng.randrange(3)}/img_{i}.png" for i in range(n_items)]
        for n in (1, 2, 3, 8):
            shards = [take_shard(rng.sample(items, len(items)), str, (k, n)) for k in range(n)]
            flat = [x for s in shards for x in s]
            assert sorted(flat) == sorted(items)  # the union is the whole set, no overlap
            assert max(map(len, shards)) - min(map(len, shards)) <= 1  # even


@pytest.mark.parametrize("text", ["4/4", "-1/2", "1", "a/b", "0/0"])
def test_bad_shard_is_a_clear_error(text) -> None:
    from cyclegan_cli.errors import CganError
    from cyclegan_cli.inference.files import parse_shard

    with pytest.raises(CganError, match="0 <= K < N"):
        parse_shard(text)


def test_translate_shards_into_one_folder(tmp_path) -> None:
    """Three `cgan translate --shard K/3` runs write every image of the set exactly once."""
    from typer.testing import CliRunner

    from cyclegan_cli.cli import app

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = ["a.png", "b.png", "sub/c.png", "sub/d.png", "e.png"]
    for name in names:
        Image.fromarray(rng.integers(0, 255, (16, 24, 3), dtype=np.uint8)).save(src / name)
    out = tmp_path / "out"
    written: list[str] = []
    for k in range(3):
        before = {p.relative_to(out).as_posix() for p in out.rglob("*.png")} \
            if out.exists() else set()
        result = CliRunner().invoke(app, ["translate", "-m", "golden_hour", "--direction",
                                          "AtoB", str(src), "-o", str(out), "--shard",
                                          f"{k}/3", "--quiet"])
        assert result.exit_code == 0, result.output
        assert f"shard {k}/3: {2 if k < 2 else 1} of 5 inputs" in result.output
        after = {p.relative_to(out).as_posix() for p in out.rglob("*.png")}
        written += sorted(after - before)
    assert sorted(written) == sorted(names)
