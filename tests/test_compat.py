"""Runs written by earlier versions keep working: tests/data/run-0.1.0 is a tiny run made by
cyclegan-cli 0.1.0 before the model-family refactor (tests/data/make_run_0_1_0.py), with what
that code did when it resumed it."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from rich.console import Console

from cyclegan_cli.config import TrainConfig
from cyclegan_cli.rundir import RunDir, load_checkpoint, load_generator
from cyclegan_cli.training.loop import train
from cyclegan_cli.training.trainer import Trainer

FIXTURE = Path(__file__).resolve().parent / "data" / "run-0.1.0"


@pytest.fixture
def old_run(tmp_path) -> Path:
    """A copy of the old run whose config points at this copy of its training images."""
    shutil.copytree(FIXTURE / "run", tmp_path / "run")
    shutil.copytree(FIXTURE / "data", tmp_path / "data")
    config = tmp_path / "run" / "config.json"
    saved = json.loads(config.read_text())
    assert "model" not in saved  # written before there were model families
    saved["dir_a"], saved["dir_b"] = (str(tmp_path / "data" / d) for d in ("trainA", "trainB"))
    config.write_text(json.dumps(saved))
    return tmp_path / "run"


@pytest.fixture
def one_thread(monkeypatch):
    """The fixture was made with one torch thread (summation order follows the threads); the
    old run saved no --threads, so the automatic count (from $OMP_NUM_THREADS) applies."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(before)


def _same(a: object, b: object, where: str = "state") -> None:
    """Exactly equal nested state (tensors bit for bit)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (where, set(a) ^ set(b))
        for key in a:
            _same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def test_an_old_config_loads_as_cyclegan(old_run) -> None:
    cfg = TrainConfig.load(RunDir(old_run).config)
    assert cfg.model == "cyclegan" and cfg.netG == "resnet_6blocks"


def test_an_old_checkpoint_is_restored_exactly(old_run) -> None:
    """Everything in the checkpoint lands in the new trainer, nothing moves or goes missing."""
    cfg = TrainConfig.load(RunDir(old_run).config)
    state = load_checkpoint(RunDir(old_run).latest)
    trainer = Trainer(cfg, torch.device("cpu"))
    trainer.load_state_dict(state["trainer"])
    _same(state["trainer"], trainer.state_dict())
    net, _ = load_generator(old_run, "BtoA")
    _same(state["trainer"]["nets"]["G_BA"], net.state_dict())


def test_an_old_run_resumes_bit_identically(old_run, one_thread) -> None:
    expected = torch.load(FIXTURE / "expected.pt", weights_only=True)
    net, _ = load_generator(old_run)
    with torch.no_grad():
        probe = net(torch.linspace(-1, 1, 3 * 32 * 32).reshape(1, 3, 32, 32))
    if not torch.equal(probe, expected["fingerprint"]):
        pytest.skip("this CPU's convolutions round differently from the machine that made "
                    "the fixture (e.g. AVX2 against AVX-512), so bit equality is not defined "
                    "here; test_an_old_checkpoint_is_restored_exactly still runs")
    result = train(resume=old_run, overrides={"max_steps": 8}, quiet=True,
                   console=Console(file=open(os.devnull, "w")))  # noqa: SIM115
    assert result.global_step == expected["global_step"] == 8
    _same(expected["nets"], load_checkpoint(RunDir(old_run).latest)["trainer"]["nets"], "nets")
    with open(RunDir(old_run).losses, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["step"]) > 5]
    for row in [*rows, *expected["losses"]]:
        row.pop("images_per_s")  # measured speed
    assert rows == expected["losses"]
