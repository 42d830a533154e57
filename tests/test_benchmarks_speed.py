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
                         "--peak-tflops", "1", "--json", str(out)])
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
    assert result["video"]["frames_per_s"] > 0 and result["video"]["size"] == "40x24"


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
