"""The ``cgan`` command line through Typer's CliRunner (and once as a real subprocess)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cyclegan_cli import __version__
from cyclegan_cli.cli import app
from cyclegan_cli.config import TrainConfig, cli_fields
from cyclegan_cli.rundir import load_checkpoint

runner = CliRunner()
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TINY = ["--ngf", "8", "--ndf", "8", "--net-g", "resnet_6blocks", "--load-size", "36",
        "--crop-size", "32", "--num-workers", "0", "--device", "cpu", "--seed", "1", "--quiet"]


def invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200",
                                                             "NO_COLOR": "1"})
    return result, ANSI.sub("", result.output)


def test_train_help_documents_every_option_with_its_default():
    result, text = invoke("train", "--help")
    assert result.exit_code == 0
    flat = " ".join(text.split())
    for name, _hint, default, meta in cli_fields():
        flag = meta.get("flag") or name.replace("_", "-").lower()
        assert f"--{flag}" in flat, flag
        if default is not None:
            shown = default if not isinstance(default, bool) else (flag if default else
                                                                   f"no-{flag}")
            assert f"[default: {shown}]" in flat, (flag, shown)
    for extra in ("--resume", "--config", "--quiet"):
        assert extra in flat
    for panel in ("Data", "Model", "Losses", "Optimisation", "Run"):
        assert panel in text


def test_version_and_top_level_help():
    result, text = invoke("--version")
    assert result.exit_code == 0 and __version__ in text
    result, text = invoke("--help")
    assert result.exit_code == 0 and "train" in text and "demo" in text


def test_empty_folder_is_a_one_line_error(tmp_path, tiny_data):
    (tmp_path / "empty").mkdir()
    result, text = invoke("train", tiny_data / "trainA", tmp_path / "empty",
                          "--runs-dir", tmp_path / "runs", *TINY)
    assert result.exit_code == 1
    assert "error:" in text and "no images" in text and str(tmp_path / "empty") in text
    assert "Traceback" not in text and len(text.strip().splitlines()) <= 2
    assert not (tmp_path / "runs").exists()


def test_resume_and_config_errors_name_the_option(tmp_path, tiny_data):
    """A changed fixed option is named by its flag (--net-g, not --netg); a typo in a saved
    config.json is one line naming the file and the option."""
    result, text = invoke("train", tiny_data / "trainA", tiny_data / "trainB", "--runs-dir",
                          tmp_path, "--name", "r", "--max-steps", "1", *TINY)
    assert result.exit_code == 0, text
    for flag, value in (("--net-g", "unet_128"), ("--serial", None)):
        result, text = invoke("train", "--resume", tmp_path / "r", flag,
                              *([value] if value else []), "--quiet")
        assert result.exit_code == 1 and f"error: {flag} cannot change when resuming" in text
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**saved, "netG": "resnet_8blocks"}))
    result, text = invoke("train", "--config", bad, "--name", "other")
    assert result.exit_code == 1 and "Traceback" not in text
    assert f"error: {bad}: --net-g must be one of resnet_9blocks" in " ".join(text.split())


def test_missing_folder_and_bad_values_are_clear_errors(tmp_path, tiny_data):
    result, text = invoke("train", tmp_path / "nope", tiny_data / "trainB", *TINY)
    assert result.exit_code == 1 and "folder not found" in text
    result, text = invoke("train", tiny_data / "trainA", tiny_data / "trainB", "--lr", "-1",
                          *TINY)
    assert result.exit_code == 1 and "--lr must be > 0" in text
    result, text = invoke("train", tiny_data / "trainA", tiny_data / "trainB", "--gan-mode",
                          "nonsense", *TINY)
    assert result.exit_code == 2 and "nonsense" in text  # Typer's own usage error


def test_corrupt_image_is_skipped_with_a_warning_and_training_proceeds(tmp_path, tiny_data):
    dir_a = tmp_path / "A"
    shutil.copytree(tiny_data / "trainA", dir_a)
    (dir_a / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (dir_a / "truncated.png").write_bytes((dir_a / "0000.png").read_bytes()[:200])
    result, text = invoke("train", dir_a, tiny_data / "trainB", "--runs-dir", tmp_path / "runs",
                          "--name", "skip", "--n-epochs", "2", "--n-epochs-decay", "0",
                          "--cache", *TINY)
    assert result.exit_code == 0, text
    flat = " ".join(text.split())
    assert flat.count("broken.jpg") == 1 and flat.count("truncated.png") == 1
    assert "skipping unreadable image" in flat and "done:" in flat
    state = load_checkpoint(tmp_path / "runs" / "skip" / "checkpoints" / "latest.pt")
    assert state["trainer"]["global_step"] == 2 * 10  # 10 files listed in A, all steps ran
    assert len(state["bad_files"]) == 2


def test_corrupt_image_without_cache_in_worker_processes(tmp_path, tiny_data):
    dir_b = tmp_path / "B"
    shutil.copytree(tiny_data / "trainB", dir_b)
    (dir_b / "sub").mkdir()
    (dir_b / "sub" / "bad.png").write_text("not an image")
    args = [a for a in TINY if a != "--num-workers"]
    args.remove("0")
    result, text = invoke("train", tiny_data / "trainA", dir_b, "--runs-dir", tmp_path / "runs",
                          "--name", "w", "--n-epochs", "2", "--n-epochs-decay", "0",
                          "--num-workers", "2", "--serial", *args)
    assert result.exit_code == 0, text
    flat = " ".join(text.split())
    assert flat.count("bad.png") == 1 and "skipping unreadable image" in flat


def test_resume_and_dataroot_through_the_cli(tmp_path, tiny_data):
    result, text = invoke("train", "--dataroot", tiny_data, "--runs-dir", tmp_path,
                          "--max-steps", "3", *TINY)
    assert result.exit_code == 0, text
    run = tmp_path / tiny_data.name  # the default name comes from the dataroot folder
    assert TrainConfig.load(run / "config.json").dir_a == str((tiny_data / "trainA").resolve())
    result, text = invoke("train", "--resume", run, "--max-steps", "5", "--quiet")
    assert result.exit_code == 0, text
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["trainer"]["global_step"] == 5
    assert TrainConfig.load(run / "config.json").max_steps == 5
    result, text = invoke("train", "--resume", run, "--ngf", "16")
    assert result.exit_code == 1 and "--ngf cannot change when resuming" in text
    result, text = invoke("train", "--dataroot", tiny_data, "--runs-dir", tmp_path, *TINY)
    assert result.exit_code == 1 and "already exists" in text and "--resume" in text


def test_config_file_starts_a_new_run_with_overrides(tmp_path, tiny_data):
    result, _ = invoke("train", tiny_data / "trainA", tiny_data / "trainB", "--runs-dir",
                       tmp_path, "--name", "first", "--max-steps", "2", "--gan-mode", "hinge",
                       *TINY)
    assert result.exit_code == 0
    result, text = invoke("train", "--config", tmp_path / "first" / "config.json", "--name",
                          "second", "--max-steps", "1", "--quiet")
    assert result.exit_code == 0, text
    second = TrainConfig.load(tmp_path / "second" / "config.json")
    assert second.gan_mode == "hinge" and second.ngf == 8 and second.max_steps == 1


def test_python_dash_m_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "cyclegan_cli", "train", "--help"],
                         capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent)
    assert out.returncode == 0 and "--gan-mode" in out.stdout


def test_demo_command_makes_data_trains_and_scores(tmp_path):
    result, text = invoke("demo", tmp_path / "demo", "--steps", "3", "--quiet")
    assert result.exit_code == 0, text
    flat = " ".join(text.split())
    assert "demo finished" in flat and "untouched" in flat
    for split, count in (("trainA", 200), ("trainB", 200), ("testA", 20), ("testB_true", 20)):
        assert len(list((tmp_path / "demo" / "data" / split).glob("*.png"))) == count
    run = tmp_path / "demo" / "runs" / "golden_hour"
    assert (run / "samples" / "test_AtoB.png").exists()
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["trainer"]["global_step"] == 3
    result, text = invoke("demo", tmp_path / "demo", "--steps", "1", "--quiet")
    assert result.exit_code == 0, text  # a second demo keeps the first run
    assert (tmp_path / "demo" / "runs" / "golden_hour-2" / "checkpoints" / "latest.pt").exists()


def test_samples_writes_the_held_out_photos(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from cyclegan_cli.data.demo import DEMO_PHOTOS, DEMO_PHOTOS_TEST, _photos

    result, output = invoke("samples", tmp_path / "photos")
    assert result.exit_code == 0, output
    written = sorted((tmp_path / "photos").iterdir())
    assert [p.name for p in written] == sorted(Path(n).stem + ".png" for n in DEMO_PHOTOS_TEST)
    for path, arr in zip(sorted(written), [_photos((n,))[0] for n in sorted(DEMO_PHOTOS_TEST)],
                         strict=True):
        with Image.open(path) as img:
            np.testing.assert_array_equal(np.asarray(img), arr)
    assert invoke("samples", tmp_path / "all", "--all")[0].exit_code == 0
    assert len(list((tmp_path / "all").iterdir())) == len(DEMO_PHOTOS)


def test_help_shows_bracketed_defaults() -> None:
    """'[default: ...]' in a help text is shown, not eaten as rich markup."""
    from typer.testing import CliRunner

    from cyclegan_cli.cli import app

    wide = {"COLUMNS": "300", "TERMINAL_WIDTH": "300"}
    out = CliRunner().invoke(app, ["translate", "--help"], env=wide).output
    assert "stop before this frame [default: the end]" in out
    assert "metadata [default: the file's own direction" in out
    out = CliRunner().invoke(app, ["gimp", "install", "--help"], env=wide).output
    assert "GIMP 3's user folder [default: ~/.config/GIMP/3.0 on Linux" in out
