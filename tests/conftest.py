"""Shared fixtures: a tiny unpaired dataset made from scikit-image's photos, and tiny configs.

Tests that run in an install without torch are marked ``torchfree`` (a whole module with
``pytestmark = pytest.mark.torchfree``; its few tests that do need torch carry ``needs_torch``).
Without torch, modules that mark nothing torch-free are not collected at all, and
``pytest -m torchfree`` runs the rest: that is how .ci/run tests the built wheel.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cyclegan_cli.config import TrainConfig
from cyclegan_cli.cpu import cpu_count
from cyclegan_cli.data.demo import make_demo_dataset

# One thread count for the whole session, so that runs compared with each other round alike:
# `--threads` auto follows how busy the cores are, which moves while the suite runs (torch, not yet
# imported, reads it too; tests of the auto rule clear it)
os.environ.setdefault("OMP_NUM_THREADS", str(cpu_count()))

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="needs torch (the [train] extra)")
TORCHFREE_MARK = "pytest.mark.torchfree"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Without torch, skip test modules in which no test is marked torch-free (they import it)."""
    if HAS_TORCH or collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    return TORCHFREE_MARK not in collection_path.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 + 8 unpaired 32x32 crops (B graded), plus a 4-image paired test split."""
    return make_demo_dataset(tmp_path_factory.mktemp("data"), size=32, n_train=8, n_test=4)


def straight_and_resumed(make: Callable[..., TrainConfig], runs: Path, steps: int = 4,
                         stop: int = 2) -> tuple[list[dict], dict]:
    """The networks in the last checkpoint of a run of ``steps`` steps and of one stopped at
    ``stop`` and resumed (``make(runs_dir, max_steps)`` builds each config), and the resumed
    run's checkpoint."""
    import io

    from rich.console import Console

    from cyclegan_cli.rundir import RunDir, load_checkpoint
    from cyclegan_cli.training.loop import train

    def quiet() -> Console:
        return Console(file=io.StringIO())

    straight = train(make(runs / "a", steps), console=quiet(), quiet=True)
    first = train(make(runs / "b", stop), console=quiet(), quiet=True)
    resumed = train(resume=first.run_dir, overrides={"max_steps": steps}, console=quiet(),
                    quiet=True)
    assert straight.global_step == resumed.global_step == steps
    states = [load_checkpoint(RunDir(r.run_dir).latest) for r in (straight, resumed)]
    return [s["trainer"]["nets"] for s in states], states[1]


def tiny_config(data: Path, runs: Path, **changes) -> TrainConfig:
    """A config small enough for a CPU test to run dozens of steps in seconds."""
    values = dict(
        dir_a=str(data / "trainA"), dir_b=str(data / "trainB"), load_size=36, crop_size=32,
        netG="resnet_6blocks", ngf=8, ndf=8, n_epochs=2, n_epochs_decay=2, name="tiny",
        runs_dir=str(runs), log_every=2, save_every=2, device="cpu", seed=7, num_workers=0,
    )
    values.update(changes)
    return TrainConfig(**values)


MARKERS = (
    "slow: long-running test (deselect with -m 'not slow')",
    "gpu: needs a CUDA GPU; skipped where none is present",
    "torchfree: runs in an install without torch (.ci/run runs these from the built wheel)",
    "gimp: runs a real GIMP 3 (the chroot of tests/gimp/); .ci/run runs these once, in the "
    "full suite",
    "metrics: needs the [metrics] extra (torch-fidelity, lpips); .ci/run also runs these in "
    "a venv of its own",
)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true",
                     help="also run tests marked slow (minutes each on a 2-core CPU)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow") or os.environ.get("CGAN_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow test: run with --run-slow (or CGAN_RUN_SLOW=1)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@contextlib.contextmanager
def tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A small tmpfs mounted on ``folder`` (``options``: e.g. ``size=24k`` or ``size=64k,ro``)
    for real full-disk and read-only tests; the test skips where it cannot be mounted."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs",
                                            str(folder)], capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)
