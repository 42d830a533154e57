"""Faults injected on purpose: a training process killed with SIGKILL at random moments, a
full disk and unwritable folders, hostile image files (random bytes included, through
hypothesis), random arrays through the inference core, and no tracebacks for user errors.
docs/reliability.md maps each fault to what the user sees and to the test here."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cyclegan_cli.cli import app
from cyclegan_cli.data.images import load_rgb

PROJECT = Path(__file__).resolve().parents[1]
MODEL = PROJECT / "weights" / "golden_hour-AtoB.onnx"
TRAIN = ["--net-g", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load-size", "36",
         "--crop-size", "32", "--save-every", "1", "--log-every", "1", "--device", "cpu",
         "--num-workers", "0", "--seed", "1", "--quiet"]


def _cgan(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "cyclegan_cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# -- SIGKILL during training -------------------------------------------------------------------
def test_sigkill_at_random_moments_then_resume(tmp_path, tiny_data) -> None:
    """Kill -9 three times at random moments after the first checkpoint; every checkpoint on
    disk always loads, each resume continues, and the finished run has every logged step
    exactly once and the same weights as a run that was never killed."""
    data = [str(tiny_data / "trainA"), str(tiny_data / "trainB")]
    steps = 48
    rng = random.Random(int(time.time()))
    seed_note = f"kill delays drawn with seed {rng.getstate()[1][0]}"
    run = tmp_path / "runs" / "k"
    args = ["train", *data, "--runs-dir", "runs", "--name", "k", "--max-steps", str(steps),
            *TRAIN]
    killed = 0
    for attempt in range(3):
        proc = _cgan(*args, cwd=tmp_path)
        deadline = time.monotonic() + 120
        start_step = _checkpoint_step(run) if attempt else -1
        while time.monotonic() < deadline and proc.poll() is None:
            if (run / "checkpoints" / "latest.pt").exists() and \
                    _checkpoint_step(run) > start_step:
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.6))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        killed += proc.returncode == -signal.SIGKILL
        for ckpt in (run / "checkpoints").glob("*.pt"):  # never half-written
            torch.load(ckpt, map_location="cpu", weights_only=False)
        args = ["train", "--resume", "runs/k", "--max-steps", str(steps), "--quiet"]
    final = _cgan(*args, cwd=tmp_path)
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, f"{seed_note}\n{err[-2000:]}"
    assert killed >= 1, "no kill landed mid-run"
    assert not list((run / "checkpoints").glob(".*.tmp")), "stale temporaries were left"
    logged = [int(line.split(",")[0]) for line in
              (run / "losses.csv").read_text().splitlines()[1:]]
    assert logged == list(range(1, steps + 1)), seed_note

    whole = _cgan("train", *data, "--runs-dir", "runs", "--name", "w", "--max-steps",
                  str(steps), *TRAIN, cwd=tmp_path)
    assert whole.wait(timeout=300) == 0
    a = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)["trainer"]["nets"]
    b = torch.load(tmp_path / "runs" / "w" / "checkpoints" / "latest.pt",
                   weights_only=False)["trainer"]["nets"]
    for net in a:
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), f"{net}.{key} ({seed_note})"


def _checkpoint_step(run: Path) -> int:
    try:
        return int(torch.load(run / "checkpoints" / "latest.pt",
                              weights_only=False)["trainer"]["global_step"])
    except Exception:  # being replaced right now
        return -1


def test_loss_log_drops_a_line_cut_short_by_a_kill(tmp_path) -> None:
    from cyclegan_cli.training.run import LossLog

    path = tmp_path / "losses.csv"
    log = LossLog(path, ["D_A"])
    for step in (1, 2, 3):
        log.write({"step": step, "epoch": 1, "lr": 0.1, "images_per_s": 2.0, "D_A": 0.5})
    log.close()
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("1")  # the start of step 10's row: it would read as step 1
    LossLog(path, ["D_A"], resume_step=3).close()
    rows = path.read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3"]


# -- a full disk and unwritable folders -------------------------------------------------------
def _disk_full_after(monkeypatch, n_ok: int) -> None:
    """Every fsync after the first ``n_ok`` fails as a full disk does."""
    real = os.fsync
    calls = {"n": 0}

    def fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] > n_ok:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def _photos(folder: Path, n: int, side: int = 40) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        paths.append(folder / f"p{i}.png")
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(paths[-1])
    return paths


def _no_temporaries(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_disk_full_during_translation(tmp_path, monkeypatch) -> None:
    _photos(tmp_path / "in", 4)
    out = tmp_path / "out"
    _disk_full_after(monkeypatch, 2)
    result = CliRunner().invoke(app, ["translate", "-m", str(MODEL), str(tmp_path / "in"),
                                      "-o", str(out), "--quiet"])
    assert result.exit_code == 1
    assert result.output.count("the disk is full") == 2  # each failed file named once
    assert "Traceback" not in result.output
    written = sorted(p.name for p in out.glob("*.png"))
    assert written == ["p0.png", "p1.png"]  # earlier outputs complete
    for p in out.glob("*.png"):
        load_rgb(p)
    _no_temporaries(out)


def test_disk_full_during_export_keeps_the_old_file(tmp_path, tiny_data, monkeypatch) -> None:
    from cyclegan_cli.training.loop import train
    from tests.conftest import tiny_config

    train(tiny_config(tiny_data, tmp_path / "runs", max_steps=2), quiet=True)
    run = tmp_path / "runs" / "tiny"
    first = CliRunner().invoke(app, ["export", str(run), "-o", str(tmp_path / "w")])
    assert first.exit_code == 0, first.output
    before = {p.name: p.read_bytes() for p in (tmp_path / "w").glob("*.onnx")}
    _disk_full_after(monkeypatch, 0)
    result = CliRunner().invoke(app, ["export", str(run), "-o", str(tmp_path / "w")])
    assert result.exit_code != 0 and "the disk is full" in result.output
    assert "Traceback" not in result.output
    assert {p.name: p.read_bytes() for p in (tmp_path / "w").glob("*.onnx")} == before
    _no_temporaries(tmp_path / "w")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
def test_disk_full_during_training_keeps_the_last_checkpoint(tmp_path, tiny_data,
                                                             monkeypatch) -> None:
    runs = tmp_path / "runs"
    args = ["train", str(tiny_data / "trainA"), str(tiny_data / "trainB"), "--runs-dir",
            str(runs), "--name", "f", "--max-steps", "2", *TRAIN]
    assert CliRunner().invoke(app, args).exit_code == 0
    latest = runs / "f" / "checkpoints" / "latest.pt"
    before = latest.read_bytes()
    real = os.fsync

    def fsync(fd: int) -> None:  # the disk fills up just as the checkpoint is written
        if "latest.pt" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    result = CliRunner().invoke(app, ["train", "--resume", str(runs / "f"), "--max-steps",
                                      "4", "--quiet"])
    assert result.exit_code == 1
    assert "the disk is full" in result.output and "cgan train --resume" in result.output
    assert "Traceback" not in result.output
    assert latest.read_bytes() == before
    _no_temporaries(runs / "f")


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_real_full_disk_and_a_read_only_folder(tmp_path) -> None:
    """A 300 KB tmpfs really fills up; then it is remounted read-only."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        _photos(tmp_path / "in", 8, side=160)  # ~77 KB each as PNG output
        run = CliRunner().invoke(app, ["translate", "-m", str(MODEL), str(tmp_path / "in"),
                                       "-o", str(disk / "out"), "--quiet"])
        assert run.exit_code == 1 and "the disk is full" in run.output, run.output
        written = list((disk / "out").glob("*.png"))
        assert 0 < len(written) < 8
        for p in written:
            load_rgb(p)  # complete files only
        _no_temporaries(disk)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        ro = CliRunner().invoke(app, ["translate", "-m", str(MODEL), str(tmp_path / "in"),
                                      "-o", str(disk / "out2"), "--quiet"])
        assert ro.exit_code != 0 and "read-only" in ro.output, ro.output
        assert "Traceback" not in ro.output
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
