"""The training step's speed levers change speed, not the math: fused network calls,
channels-last, fused Adam and torch.compile (with its fallback) against the plain step."""

from __future__ import annotations

import pytest
import torch

from cyclegan_cli.config import TrainConfig
from cyclegan_cli.training.families import cyclegan as cyclegan_family
from cyclegan_cli.training.speed import SpeedPlan, resolve_speed
from cyclegan_cli.training.trainer import Trainer
from tests.precision import assert_bf16_trains_like_fp32

CPU = torch.device("cpu")


def _cfg(**changes) -> TrainConfig:
    values = dict(netG="resnet_6blocks", ngf=8, ndf=8, netD="n_layers", n_layers_D=2, seed=0)
    values.update(changes)
    return TrainConfig(**values)


def _inputs(n: int = 2, side: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return tuple(torch.rand(n, 3, side, side, generator=gen) * 2 - 1 for _ in range(2))


def _train(cfg: TrainConfig, plan: SpeedPlan, steps: int = 3) -> tuple[torch.Tensor, dict]:
    torch.manual_seed(0)
    t = Trainer(cfg, CPU, "fp32", speed=plan)
    a, b = _inputs()
    losses = torch.stack([t.train_step(a, b) for _ in range(steps)])
    return losses, {k: v.detach().clone() for k, v in t.model.state_dict().items()}


def _assert_same_training(x: tuple[torch.Tensor, dict], y: tuple[torch.Tensor, dict]) -> None:
    torch.testing.assert_close(x[0], y[0], rtol=5e-3, atol=2e-3)  # every loss, every step
    for name, value in x[1].items():
        torch.testing.assert_close(value.float(), y[1][name].float(), rtol=0, atol=5e-3,
                                   msg=name)


@pytest.mark.parametrize("changes", [{}, {"lambda_identity": 0.0}, {"gan_mode": "wgangp"},
                                     {"gan_mode": "hinge", "pool_size": 2}])
def test_levers_give_the_plain_step(changes) -> None:
    cfg = _cfg(**changes)
    plain = _train(cfg, SpeedPlan.plain())
    fast = _train(cfg, SpeedPlan("off", channels_last=True, fused_adam=True, fuse_calls=True))
    _assert_same_training(fast, plain)
    assert plain[0][0, 2:].abs().sum() > 0  # losses were computed


def test_fused_calls_really_differ_from_a_broken_step(monkeypatch) -> None:
    """The comparison above can fail: drop the identity images from the fused call and the
    identity losses no longer match."""
    cfg = _cfg()
    plain = _train(cfg, SpeedPlan.plain())
    original = cyclegan_family.identity_loss
    monkeypatch.setattr(cyclegan_family, "identity_loss",
                        lambda same, orig, w: original(same.flip(-1), orig, w))
    broken = _train(cfg, SpeedPlan("off", False, False, True))
    with pytest.raises(AssertionError):
        _assert_same_training(broken, plain)


def test_auto_levers_by_device() -> None:
    cpu = resolve_speed(_cfg(), CPU)
    assert cpu == SpeedPlan("off", False, False, True)
    cuda = resolve_speed(_cfg(), torch.device("cuda"))
    assert cuda.channels_last and cuda.fused_adam and cuda.fuse_calls
    assert resolve_speed(_cfg(norm="batch"), CPU).fuse_calls is False  # batch stats mix
    on = resolve_speed(_cfg(compile="reduce-overhead", channels_last="on", fused_adam="on"), CPU)
    assert on == SpeedPlan("reduce-overhead", True, True, True)


def test_compile_failure_falls_back_to_eager(monkeypatch) -> None:
    """Where torch.compile cannot work, the first step warns, puts the state back and trains
    eagerly: the result equals an eager run."""

    def broken_compile(net, mode):
        if mode == "off":
            return net

        def call(*args):
            net(*args)  # half-way through the step, as a compiler failure would be
            raise RuntimeError("no C++ compiler found\nmore details")
        return call

    monkeypatch.setattr(cyclegan_family, "compiled", broken_compile)
    cfg = _cfg()
    torch.manual_seed(0)
    t = Trainer(cfg, CPU, "fp32", speed=SpeedPlan("default", False, False, True))
    warnings: list[str] = []
    t.on_warning = warnings.append
    a, b = _inputs()
    losses = torch.stack([t.train_step(a, b) for _ in range(3)])
    assert len(warnings) == 1 and "no C++ compiler found" in warnings[0]
    assert "more details" not in warnings[0] and t.speed.compile == "off"
    eager = _train(cfg, SpeedPlan("off", False, False, True))
    torch.testing.assert_close(losses, eager[0], rtol=0, atol=1e-6)
    assert t.global_step == 3


@pytest.mark.slow
def test_compiled_step_equals_eager() -> None:
    """torch.compile of the four networks (inductor; about 2 minutes on 2 CPU cores)."""
    cfg = _cfg()
    compiled = _train(cfg, SpeedPlan("default", False, False, True))
    _assert_same_training(compiled, _train(cfg, SpeedPlan.plain()))


def test_speed_options_on_the_command_line(tmp_path, tiny_data) -> None:
    from typer.testing import CliRunner

    from cyclegan_cli.cli import app

    runs = tmp_path / "runs"
    args = ["train", str(tiny_data / "trainA"), str(tiny_data / "trainB"), "--runs-dir",
            str(runs), "--name", "s", "--net-g", "resnet_6blocks", "--ngf", "4", "--ndf", "4",
            "--load-size", "32", "--crop-size", "32", "--max-steps", "2", "--device", "cpu",
            "--num-workers", "0", "--compile", "off", "--channels-last", "on",
            "--fused-adam", "on", "--no-fuse-calls", "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = TrainConfig.load(runs / "s" / "config.json")
    assert (saved.compile, saved.channels_last, saved.fused_adam, saved.fuse_calls) == \
        ("off", "on", "on", False)
    again = CliRunner().invoke(app, ["train", "--resume", str(runs / "s"), "--max-steps", "3",
                                     "--fuse-calls", "--quiet"])
    assert again.exit_code == 0, again.output  # speed options may change on resume


def test_device_batches_on_the_cpu() -> None:
    from cyclegan_cli.training.prefetch import device_batches

    raw = [{"A": torch.full((1, 3, 4, 4), v, dtype=torch.uint8),
            "B": torch.zeros((1, 3, 4, 4), dtype=torch.uint8), "bad": [f"x{v}"]}
           for v in (0, 255)]
    out = list(device_batches(raw, CPU))
    assert [bad for _, _, bad in out] == [["x0"], ["x255"]]
    assert out[0][0].min() == -1 and out[1][0].max() == 1 and out[0][1].dtype == torch.float32


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.gpu
@needs_cuda
def test_cuda_default_step_matches_plain() -> None:
    """On a GPU the default levers (bf16, channels-last, fused Adam, fused calls, compile)
    train like the plain fp32 step, within the bounds of tests/precision.py."""
    cuda = torch.device("cuda")
    cfg = TrainConfig(netG="resnet_6blocks", ngf=8, ndf=8, seed=0, pool_size=0,
                      recipe="reference")  # the generator tests/precision.py's bound is for
    assert_bf16_trains_like_fp32(cfg, cuda, speed=resolve_speed(cfg, cuda))


@pytest.mark.gpu
@needs_cuda
def test_cuda_prefetch_gives_the_same_batches() -> None:
    from cyclegan_cli.training.prefetch import device_batches

    cuda = torch.device("cuda")
    raw = [{"A": torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8).pin_memory(),
            "B": torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8).pin_memory(),
            "bad": []} for _ in range(4)]
    for (a, b, _), batch in zip(device_batches(raw, cuda), raw, strict=True):
        assert a.device.type == "cuda"
        torch.testing.assert_close(a.cpu(), batch["A"].float() / 127.5 - 1)
        torch.testing.assert_close(b.cpu(), batch["B"].float() / 127.5 - 1)
