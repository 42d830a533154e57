"""Multi-process training under torchrun, on the CPU with the gloo backend: the ranks share
the data without overlap, hold identical weights, and a run resumes exactly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cyclegan_cli.cli import app
from cyclegan_cli.data.dataset import EpochSampler
from cyclegan_cli.training.distributed import strip_gpus

ARGS = ["--net-g", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load-size", "36",
        "--crop-size", "32", "--log-every", "2", "--device", "cpu", "--num-workers", "0",
        "--seed", "3", "--quiet", "--no-lr-fit-steps"]  # stopped by --max-steps, then resumed


@pytest.mark.parametrize(("length", "world"), [(8, 2), (7, 3), (5, 4)])
def test_each_rank_gets_its_own_share(length, world) -> None:
    full = EpochSampler((length, 3), seed=1).keys(2)
    shares = [EpochSampler((length, 3), seed=1, rank=r, world=world).keys(2)
              for r in range(world)]
    assert len({len(s) for s in shares}) == 1  # equal steps on every rank
    assert len(shares[0]) == -(-length // world)
    seen = [k for s in shares for k in s]
    assert set(seen) == set(full)  # the whole epoch is covered
    assert len(seen) - len(set(seen)) == len(shares[0]) * world - length  # padding only


def test_strip_gpus() -> None:
    assert strip_gpus(["train", "A", "--gpus", "4", "--quiet"]) == ["train", "A", "--quiet"]
    assert strip_gpus(["train", "--gpus=2", "B"]) == ["train", "B"]


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", "-m", "cyclegan_cli", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _checkpoint(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "latest.pt", map_location="cpu", weights_only=False)


def test_two_ranks_train_in_step_and_resume_exactly(tmp_path, tiny_data) -> None:
    data = [str(tiny_data / "trainA"), str(tiny_data / "trainB")]
    first = _torchrun(["train", *data, "--runs-dir", "runs", "--name", "r", "--max-steps", "4",
                       *ARGS], tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    state = _checkpoint(tmp_path / "runs" / "r")
    assert state["world_size"] == 2 and state["trainer"]["global_step"] == 4
    digests = [r["weights"] for r in state["ranks"]]
    assert digests[0] == digests[1], first.stderr[-1500:]  # DDP kept the ranks identical
    pools = [torch.cat(state["trainer"]["pool_A"]["images"]),  # rank 0's
             torch.cat(state["ranks"][1]["pool_A"]["images"])]
    assert not torch.equal(pools[0], pools[1])  # each rank has its own data and pool
    assert first.stderr.count("done:") == 1  # only rank 0 reports

    # resume through `cgan train --gpus 2` (which launches torchrun itself)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    resumed = subprocess.run([sys.executable, "-m", "cyclegan_cli", "train", "--resume",
                              "runs/r", "--max-steps", "8", "--gpus", "2", "--device", "cpu",
                              "--quiet"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming at step 4" in resumed.stderr and "torch.distributed.run" in resumed.stderr
    whole = _torchrun(["train", *data, "--runs-dir", "runs", "--name", "w", "--max-steps", "8",
                       *ARGS], tmp_path)
    assert whole.returncode == 0, whole.stderr[-2000:]
    a, b = _checkpoint(tmp_path / "runs" / "r"), _checkpoint(tmp_path / "runs" / "w")
    assert a["trainer"]["global_step"] == b["trainer"]["global_step"] == 8
    assert [r["weights"] for r in a["ranks"]] == [r["weights"] for r in b["ranks"]], \
        f"resumed run differs from the uninterrupted one\n{resumed.stderr[-1500:]}"
    steps = (tmp_path / "runs" / "r" / "losses.csv").read_text().splitlines()[1:]
    assert [int(line.split(",")[0]) for line in steps] == [2, 4, 6, 8]


@pytest.mark.skipif(torch.cuda.device_count() >= 2, reason="this machine has 2 GPUs")
def test_gpus_without_gpus_is_a_clear_error(tmp_path, tiny_data) -> None:
    result = CliRunner().invoke(app, ["train", str(tiny_data / "trainA"),
                                      str(tiny_data / "trainB"), "--gpus", "2"])
    assert result.exit_code != 0
    assert "CUDA GPU(s)" in result.output and "--device cpu" in result.output


def test_ranks_agree_with_batch_norm_and_gradient_penalty(tmp_path, tiny_data) -> None:
    """Double backward (WGAN-GP) and batch norm (no fused calls) under DDP."""
    result = _torchrun(["train", str(tiny_data / "trainA"), str(tiny_data / "trainB"),
                        "--runs-dir", "runs", "--name", "g", "--max-steps", "2",
                        "--gan-mode", "wgangp", "--norm", "batch", *ARGS], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    state = _checkpoint(tmp_path / "runs" / "g")
    assert state["ranks"][0]["weights"] == state["ranks"][1]["weights"]


def test_pix2pix_ranks_agree(tmp_path, tiny_data) -> None:
    """The paired family under DDP: batch norm and dropout (its defaults), both ranks' weights
    identical; its pairs are the demo folders' same-named images."""
    result = _torchrun(["train", "--model", "pix2pix", str(tiny_data / "trainA"),
                        str(tiny_data / "trainB"), "--runs-dir", "runs", "--name", "p",
                        "--max-steps", "2", *ARGS], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    state = _checkpoint(tmp_path / "runs" / "p")
    assert state["world_size"] == 2 and state["exports"] == {"AtoB": "G_ema"}
    assert state["ranks"][0]["weights"] == state["ranks"][1]["weights"]


def test_cut_ranks_agree(tmp_path, tiny_data) -> None:
    """CUT under DDP: G's output and its PatchNCE features come from one call of the wrapped
    generator; the projector is averaged with it; both ranks' weights identical."""
    result = _torchrun(["train", "--model", "fastcut", str(tiny_data / "trainA"),
                        str(tiny_data / "trainB"), "--runs-dir", "runs", "--name", "c",
                        "--max-steps", "2", "--nce-patches", "16", *ARGS], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    state = _checkpoint(tmp_path / "runs" / "c")
    assert set(state["trainer"]["nets"]) >= {"G", "D", "F"}
    assert state["ranks"][0]["weights"] == state["ranks"][1]["weights"]
