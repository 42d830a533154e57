"""What a run prints where no one watches a terminal (nohup, SLURM, CI, pipes): plain,
timestamped step lines while it runs, whole and uncut; the header and the ETA note."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cyclegan_cli.training.display import format_duration
from tests.conftest import needs_torch

pytestmark = needs_torch

TINY = ["--ngf", "8", "--ndf", "8", "--net-g", "resnet_6blocks", "--load-size", "36",
        "--crop-size", "32", "--num-workers", "0", "--device", "cpu", "--seed", "1"]
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d step (\d+)/(\d+) epoch \d+/\d+ "
                  r"[\d.]+ img/s ETA (\d+:\d\d:\d\d|--) lr [\d.e-]+ D_A=")


def _piped_train(args: list[str], runs: Path, until: re.Pattern[str],
                 timeout: float = 300) -> tuple[list[str], bool]:
    """Run ``cgan train`` with its output on a pipe, read lines as they come until one
    matches ``until``; return the lines and whether the run was still going then (it is
    interrupted after)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "80"}
    env.pop("FORCE_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "cyclegan_cli", "train", *args,
                             "--runs-dir", str(runs)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    running = False
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if until.search(line):
                running = proc.poll() is None
                break
            assert time.monotonic() < deadline, "\n".join(lines[-20:])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # saves a checkpoint and stops
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
        if proc.stdout is not None:
            lines += [x.rstrip("\n") for x in proc.stdout]
    return lines, running


def test_a_piped_run_prints_whole_step_lines_while_it_runs(tiny_data, tmp_path) -> None:
    args = [str(tiny_data / "trainA"), str(tiny_data / "trainB"), *TINY, "--log-every", "2",
            "--n-epochs", "50", "--n-epochs-decay", "50", "--name", "piped"]
    lines, running = _piped_train(args, tmp_path, re.compile(r" step 6/"))
    assert running, "the step lines came only when the run ended"
    header = next(x for x in lines if x.startswith("run "))
    assert "800 steps" in header and "1 CPU thread," in header and "M parameters" in header
    assert any(x.startswith("about ") and "for the 797 steps left" in x for x in lines)
    steps = [LINE.match(x) for x in lines if " step " in x and "img/s" in x]
    assert [int(m.group(1)) for m in steps if m][:3] == [2, 4, 6], lines
    for x in lines:  # nothing cut at the pipe's 80 columns, nothing drawn
        assert "…" not in x and "\x1b" not in x and "━" not in x
    line = next(x for x in lines if LINE.match(x))
    assert len(line) > 80 and re.search(r" idt_B=\d+\.\d{3}$", line), line  # whole


def test_a_long_cpu_run_at_large_crops_is_warned_with_a_quicker_setting(tiny_data,
                                                                        tmp_path) -> None:
    args = [str(tiny_data / "trainA"), str(tiny_data / "trainB"), *TINY, "--crop-size", "96",
            "--load-size", "100", "--n-epochs", "500000", "--n-epochs-decay", "500000",
            "--name", "slow", "--quiet"]
    lines, _ = _piped_train(args, tmp_path, re.compile(r"warning:|^about "))
    note = next(x for x in lines if x.startswith(("warning:", "about ")))
    assert note.startswith("warning: about ") and "on the CPU at 96² crops" in note
    assert "--crop-size 64" in note and "--net-g resnet_6blocks" in note


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0:00:00"), (59.6, "0:01:00"), (3725, "1:02:05"), (90061, "1d 1:01:01"),
    (float("inf"), "--"), (-1, "--")])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_auto_threads_leave_busy_cores_alone(monkeypatch) -> None:
    from cyclegan_cli import cpu

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(cpu, "cpu_count", lambda: 8)
    for load, threads in ((0.0, 8), (0.4, 8), (2.6, 5), (7.9, 1), (30.0, 1)):
        monkeypatch.setattr(cpu, "busy_cores", lambda load=load: load)
        cpu._free_cores.cache_clear()
        assert cpu.auto_threads() == threads, load
    assert cpu.resolve_threads(3) == 3 and cpu.resolve_threads(0) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert cpu.auto_threads() == 2 and cpu.resolve_threads(None) == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")
    assert cpu.auto_threads() == 1  # ignored; the load (30) leaves one
    cpu._free_cores.cache_clear()


def test_busy_cores_sees_a_process_spinning_now() -> None:
    from cyclegan_cli import cpu

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        assert cpu.busy_cores(window=0.5) >= 0.6  # one core's worth, whatever else runs
    finally:
        spinner.kill()
        spinner.wait()


def test_the_thread_count_is_saved_and_workers_use_only_the_cores_left(tiny_data, tmp_path,
                                                                         monkeypatch) -> None:
    import torch

    from cyclegan_cli.config import TrainConfig
    from cyclegan_cli.data import dataset
    from cyclegan_cli.training.loop import train
    from tests.conftest import tiny_config

    before = torch.get_num_threads()
    try:
        result = train(tiny_config(tiny_data, tmp_path, max_steps=1, threads=1), quiet=True)
        assert torch.get_num_threads() == 1
        assert TrainConfig.load(result.run_dir / "config.json").threads == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        result = train(tiny_config(tiny_data, tmp_path, max_steps=1, name="auto"), quiet=True)
        assert TrainConfig.load(result.run_dir / "config.json").threads == 1  # resolved
    finally:
        torch.set_num_threads(before)
    monkeypatch.setattr(dataset, "cpu_count", lambda: 4)
    assert dataset.auto_workers(-1, reserved=4) == 0 and dataset.auto_workers(-1, 1) == 3
    assert dataset.auto_workers(2, reserved=4) == 2
