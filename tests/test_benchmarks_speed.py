"""benchmarks/train_speed.py runs end to end at toy size on the CPU and reports what it
measured (the real figures come from a GPU: docs/benchmarks.md)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_speed.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("train_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_speed"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("train_speed", None)


def test_train_speed_toy_run(bench, tmp_path) -> None:
    out = tmp_path / "speed.json"
    result = bench.main(["--batches", "1,2", "--size", "32", "--ngf", "4", "--ndf", "4",
                         "--net-g", "resnet_6blocks", "--steps", "2", "--warmup", "1",
                         "--rounds", "1", "--modes", "plain,default,+fuse_calls", "--video",
                         "--video-size", "40x24", "--video-frames", "4", "--video-batch", "2",
                         "--video-all-ways", "--peak-tflops", "1", "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert "threads" in result["device"] and result["size"] == 32
    for batch in ("1", "2"):
        rows = result["batches"][batch]
        assert set(rows) == {"plain", "default", "+fuse_calls"}
        assert rows["plain"]["speedup"] == 1.0
        for row in rows.values():
            assert row["images_per_s"] > 0 and row["gflop_per_image"] > 0
            assert 0 < row["mfu"] < 1
    assert result["modes"]["plain"] == {"precision": "fp32", "compile": "off",
                                        "channels_last": False, "fused_adam": False,
                                        "fuse_calls": False}
    assert result["modes"]["+fuse_calls"]["fuse_calls"] is True
    video = result["video"]
    assert video["size"] == "40x24" and video["batch"] == 2
    assert len(video["ways"]) == 4  # fp32 as cgan translate runs it, bf16, compiled, alone
    for way in video["ways"].values():
        assert way["frames_per_s"] > 0 and way["frames"] >= 4
    bf16 = [w for name, w in video["ways"].items() if "bf16" in name and "alone" not in name]
    for way in bf16:  # bf16 lands within a few 8-bit levels of fp32
        assert 0 < way["vs_fp32_levels"]["mean"] < 3 and way["vs_fp32_levels"]["max"] < 40


def test_mode_overrides_change_only_the_named_fields(bench) -> None:
    import torch

    from cyclegan_cli.config import TrainConfig

    cpu = torch.device("cpu")
    default, nchw, graphs = bench.modes_for(
        ["default", "default/channels_last=on", "default/compile=reduce-overhead"],
        TrainConfig(), cpu)
    assert nchw.plan.channels_last and not default.plan.channels_last  # off on the CPU
    assert graphs.plan.compile == "reduce-overhead" and default.plan.compile == "off"
    assert (graphs.plan.fused_adam, graphs.plan.fuse_calls) == (default.plan.fused_adam,
                                                                 default.plan.fuse_calls)
    with pytest.raises(SystemExit, match="unknown SpeedPlan field"):
        bench.modes_for(["default/colour=on"], TrainConfig(), cpu)


@pytest.mark.parametrize("capacity", [2e9, 40e9, 100e9])
def test_largest_batch_finds_the_memory_limit(bench, monkeypatch, capacity) -> None:
    """The search on a simulated card whose step needs 3 GB plus 70 MB per image (the real
    search needs CUDA): within its tolerance of the true limit, in a handful of tries."""
    import torch

    peak = {"bytes": 0}

    class Step:
        def train_step(self, a: int, b: int) -> None:
            need = 3e9 + a * 70e6
            if need > capacity:
                raise torch.cuda.OutOfMemoryError("simulated")
            peak["bytes"] = need

    monkeypatch.setattr(bench, "make_trainer", lambda cfg, mode, device: Step())
    monkeypatch.setattr(bench, "inputs", lambda batch, size, device: (batch, batch))
    monkeypatch.setattr(bench, "sync", lambda device: None)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: peak["bytes"])
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (capacity * 0.95, capacity))
    found = bench.largest_batch(None, None, 256, "cuda")
    true = max(0, int((capacity - 3e9) // 70e6))
    assert found["largest"] <= true
    if true:
        assert found["largest"] >= true * 0.97 and found["does_not_fit"] > true
        assert found["tries"] <= 10
    else:
        assert found["largest"] == 0


def test_flop_count_scales_with_the_image(bench) -> None:
    import torch

    from cyclegan_cli.config import TrainConfig

    cfg = TrainConfig(netG="resnet_6blocks", ngf=4, ndf=4, seed=0)
    small = bench.step_flops(cfg, 1, 32, torch.device("cpu"))
    large = bench.step_flops(cfg, 1, 64, torch.device("cpu"))
    assert large / small == pytest.approx(4, rel=0.05)  # convolutions: FLOPs ∝ pixels


def test_modes_are_cumulative_levers(bench) -> None:
    import torch

    from cyclegan_cli.config import TrainConfig

    modes = bench.modes_for(["+fused_adam", "+cudagraphs"], TrainConfig(), torch.device("cpu"))
    assert (modes[0].plan.channels_last, modes[0].plan.fused_adam, modes[0].plan.fuse_calls,
            modes[0].plan.compile) == (True, True, False, "off")
    assert modes[1].plan.compile == "reduce-overhead" and modes[1].plan.fuse_calls
    assert bench.peak_tflops("NVIDIA H100 80GB HBM3", None) == 989.4
    assert bench.peak_tflops("NVIDIA H100 PCIe", None) == 756.0


@pytest.mark.slow
def test_gpu_suite_toy_run(tmp_path) -> None:
    """benchmarks/gpu_suite.sh (the one call on a lent GPU) runs every part at toy size and
    brings back its summary and results, each part ending with exit 0."""
    import os
    import subprocess
    import tarfile

    root = SCRIPT.parents[1]
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(["bash", str(root / "benchmarks" / "gpu_suite.sh"), str(tmp_path), "--toy"],
                   cwd=root, env=env, check=True, capture_output=True, timeout=900)
    summary = (tmp_path / "summary.txt").read_text()
    parts = dict(line.split(": exit ") for line in summary.splitlines() if ": exit " in line)
    expected = {"speed", "speed_b4", "speed_variants", "video", "max_batch", "cuda_tests",
                "warm_video", *(f"quality_{how}_s{s}" for how in ("default", "plain")
                                for s in (0, 1))}
    assert expected <= set(parts)
    assert all(v.startswith("0 ") for v in parts.values()), parts
    with tarfile.open(tmp_path / "results.tar.gz") as tar:
        names = {Path(n).name for n in tar.getnames()}
    assert {"speed.json", "speed_variants.json", "video.json", "quality_plain_s0.json"} <= names
