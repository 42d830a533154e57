"""Tests for cyclegan_cli.training.schedule: lr_factor per policy and build_scheduler."""

from __future__ import annotations

import math

import pytest
import torch

from cyclegan_cli.config import TrainConfig
from cyclegan_cli.training.schedule import LR_POLICIES, build_scheduler, lr_factor


def _cfg(**kw) -> TrainConfig:
    return TrainConfig(**kw)


def test_policies_are_the_documented_four():
    assert set(LR_POLICIES) == {"linear", "step", "cosine", "constant"}


# -- linear -------------------------------------------------------------------------------------


def test_linear_hand_values():
    cfg = _cfg(lr_policy="linear", n_epochs=3, n_epochs_decay=4)
    # epochs 0..2 at the full rate, then 1 - k/5 for k = 1..4 over epochs 3..6, 0 after
    expected = [1.0, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2, 0.0]
    got = [lr_factor(cfg, e) for e in range(8)]
    assert got == pytest.approx(expected)


@pytest.mark.parametrize("n_epochs,n_decay", [(100, 100), (5, 10), (10, 1), (0, 6), (7, 0)])
def test_linear_matches_reference_formula(n_epochs, n_decay):
    cfg = _cfg(lr_policy="linear", n_epochs=n_epochs, n_epochs_decay=n_decay)
    for epoch in range(n_epochs + n_decay):
        ref = 1.0 - max(0, epoch + 1 - n_epochs) / (n_decay + 1)
        assert lr_factor(cfg, epoch) == pytest.approx(ref)


def test_linear_constant_then_decreasing_to_near_zero():
    cfg = _cfg(lr_policy="linear", n_epochs=100, n_epochs_decay=100)
    factors = [lr_factor(cfg, e) for e in range(200)]
    assert all(f == 1.0 for f in factors[:100])
    decay = factors[99:]
    steps = [a - b for a, b in zip(decay, decay[1:], strict=False)]
    assert all(s == pytest.approx(1 / 101) for s in steps)  # a straight line
    assert factors[-1] == pytest.approx(1 / 101)  # the last epoch still trains
    assert 0 < factors[-1] < 0.02


@pytest.mark.parametrize("n_epochs,n_decay", [(3, 4), (2, 0), (5, 1)])
def test_linear_never_goes_negative_past_the_end(n_epochs, n_decay):
    """Training may run past the planned epochs (e.g. --max-steps); the rate must stay >= 0."""
    cfg = _cfg(lr_policy="linear", n_epochs=n_epochs, n_epochs_decay=n_decay)
    end = n_epochs + n_decay
    for epoch in range(end, end + 10):
        assert lr_factor(cfg, epoch) == 0.0


# -- step ---------------------------------------------------------------------------------------


def test_step_hand_values():
    cfg = _cfg(lr_policy="step", lr_decay_iters=2)
    expected = [1.0, 1.0, 0.1, 0.1, 0.01, 0.01, 0.001]
    assert [lr_factor(cfg, e) for e in range(7)] == pytest.approx(expected)


def test_step_default_decays_every_50_epochs():
    cfg = _cfg(lr_policy="step")
    assert lr_factor(cfg, 0) == 1.0
    assert lr_factor(cfg, 49) == 1.0
    assert lr_factor(cfg, 50) == pytest.approx(0.1)
    assert lr_factor(cfg, 149) == pytest.approx(0.01)
    assert lr_factor(cfg, 150) == pytest.approx(0.001)


def test_step_zero_decay_iters_is_every_epoch():
    cfg = _cfg(lr_policy="step", lr_decay_iters=0)
    assert [lr_factor(cfg, e) for e in range(3)] == pytest.approx([1.0, 0.1, 0.01])


# -- cosine -------------------------------------------------------------------------------------


def test_cosine_hand_values():
    cfg = _cfg(lr_policy="cosine", n_epochs=2, n_epochs_decay=2)  # 4 epochs in all
    r2 = math.sqrt(2.0)
    expected = [1.0, (2 + r2) / 4, 0.5, (2 - r2) / 4, 0.0, 0.0, 0.0]
    got = [lr_factor(cfg, e) for e in range(7)]
    assert got == pytest.approx(expected, abs=1e-12)


def test_cosine_is_monotone_and_symmetric():
    cfg = _cfg(lr_policy="cosine", n_epochs=30, n_epochs_decay=20)
    f = [lr_factor(cfg, e) for e in range(51)]
    assert all(a >= b for a, b in zip(f, f[1:], strict=False))
    for e in range(51):
        assert f[e] + f[50 - e] == pytest.approx(1.0)


# -- constant and errors ------------------------------------------------------------------------


def test_constant_is_one_everywhere():
    cfg = _cfg(lr_policy="constant", n_epochs=2, n_epochs_decay=3)
    assert all(lr_factor(cfg, e) == 1.0 for e in range(20))


def test_unknown_policy_raises():
    cfg = _cfg()
    cfg.lr_policy = "plateau"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="unknown lr policy"):
        lr_factor(cfg, 0)


# -- build_scheduler with a real optimiser ------------------------------------------------------


def _lrs(cfg: TrainConfig, n_steps: int) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.Adam([param], lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    sched = build_scheduler(opt, cfg)
    out = [opt.param_groups[0]["lr"]]
    for _ in range(n_steps):
        param.grad = torch.ones(2)
        opt.step()
        sched.step()
        out.append(opt.param_groups[0]["lr"])
    return out


def test_scheduler_linear_on_adam():
    cfg = _cfg(lr=2e-4, lr_policy="linear", n_epochs=3, n_epochs_decay=4)
    expected = [2e-4 * f for f in [1.0, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2, 0.0]]
    assert _lrs(cfg, 7) == pytest.approx(expected, abs=1e-15)


def test_scheduler_step_on_adam():
    cfg = _cfg(lr=1e-3, lr_policy="step", lr_decay_iters=3)
    expected = [1e-3] * 3 + [1e-4] * 3 + [1e-5]
    assert _lrs(cfg, 6) == pytest.approx(expected, rel=1e-9)


def test_scheduler_cosine_on_adam():
    cfg = _cfg(lr=0.01, lr_policy="cosine", n_epochs=1, n_epochs_decay=1)
    assert _lrs(cfg, 3) == pytest.approx([0.01, 0.005, 0.0, 0.0], abs=1e-15)


def test_scheduler_constant_on_adam():
    cfg = _cfg(lr=3e-4, lr_policy="constant")
    assert _lrs(cfg, 5) == pytest.approx([3e-4] * 6)


def test_scheduler_state_dict_resumes_at_the_same_epoch():
    cfg = _cfg(lr=1.0, lr_policy="linear", n_epochs=1, n_epochs_decay=9)
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=cfg.lr)
    sched = build_scheduler(opt, cfg)
    for _ in range(4):
        opt.step()
        sched.step()
    state = sched.state_dict()

    opt2 = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched2 = build_scheduler(opt2, cfg)
    sched2.load_state_dict(state)
    opt2.step()
    sched2.step()
    # epoch 5: 1 - (5 + 1 - 1) / 10 = 0.5
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.5)


def test_schedule_is_fitted_into_max_steps():
    from cyclegan_cli.training.schedule import decay_start, fitted_lr_factor, stretch

    cfg = TrainConfig(n_epochs=100, n_epochs_decay=100, max_steps=1000)
    assert stretch(cfg, 100) == 20  # 200 planned epochs of 100 steps, 1000 run
    assert fitted_lr_factor(cfg, 0, 100) == 1.0 and fitted_lr_factor(cfg, 499, 100) == 1.0
    assert fitted_lr_factor(cfg, 500, 100) == pytest.approx(1 - 1 / 101)
    assert fitted_lr_factor(cfg, 999, 100) == pytest.approx(1 / 101)  # the reference's last
    assert decay_start(cfg, 100) == 500
    factors = [fitted_lr_factor(cfg, s, 100) for s in range(1000)]
    assert factors == sorted(factors, reverse=True)
    # no stretch where the epochs fit, or where it is switched off (runs saved before it)
    assert stretch(TrainConfig(n_epochs=1, n_epochs_decay=1, max_steps=1000), 100) == 1.0
    assert stretch(TrainConfig(n_epochs=100, n_epochs_decay=100, max_steps=0), 100) == 1.0
    off = TrainConfig(n_epochs=100, n_epochs_decay=100, max_steps=1000, lr_fit_steps=False)
    assert stretch(off, 100) == 1.0
    assert TrainConfig.from_dict({"max_steps": 5}).lr_fit_steps is False  # an older run
    assert TrainConfig.from_dict(TrainConfig().to_dict()).lr_fit_steps is True


def test_training_with_max_steps_decays_and_says_so(tiny_data, tmp_path):
    """8 steps of a 4-epoch plan (32 steps): the rate is constant for the first half, then
    falls every step, as the log shows; the run says how the schedule was fitted."""
    import csv
    import io

    from rich.console import Console

    from cyclegan_cli.training.loop import train

    from .conftest import tiny_config

    cfg = tiny_config(tiny_data, tmp_path, max_steps=8, log_every=1)
    log = io.StringIO()
    result = train(cfg, console=Console(file=log, width=200), quiet=True)
    rows = list(csv.DictReader((result.run_dir / "losses.csv").open()))
    lrs = [float(r["lr"]) for r in rows]
    assert len(lrs) == 8 and lrs[:4] == [cfg.lr] * 4
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.4 * cfg.lr
    assert "learning-rate schedule is fitted into the 8 steps" in log.getvalue()
    assert "constant to step 4" in log.getvalue()
