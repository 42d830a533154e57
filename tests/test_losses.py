"""Tests for cyclegan_cli.losses against values worked out by hand with ``math``."""

from __future__ import annotations

import math

import pytest
import torch

from cyclegan_cli.losses import (
    GAN_MODES,
    cycle_loss,
    discriminator_loss,
    discriminator_terms,
    generator_loss,
    gradient_penalty,
    identity_loss,
)

REAL = [[0.5, -1.0], [2.0, 0.0]]
FAKE = [[-0.5, 1.5], [0.25, -2.0]]


def _flat(values: list[list[float]]) -> list[float]:
    return [v for row in values for v in row]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _bce(x: float, t: float) -> float:
    """Binary cross-entropy of a logit ``x`` against target ``t``, written out in full."""
    s = _sigmoid(x)
    return -(t * math.log(s) + (1.0 - t) * math.log(1.0 - s))


def _hand_terms(mode: str, real: list[float], fake: list[float], smoothing: float = 0.0):
    t = 1.0 - smoothing
    if mode == "lsgan":
        return _mean([(x - t) ** 2 for x in real]), _mean([x**2 for x in fake])
    if mode in ("vanilla", "minimax"):
        real_term = _mean([_bce(x, t) for x in real])
        return real_term, _mean([-math.log(1.0 - _sigmoid(x)) for x in fake])
    if mode == "wgangp":
        return -_mean(real), _mean(fake)
    if mode == "hinge":
        return _mean([max(0.0, 1.0 - x) for x in real]), _mean([max(0.0, 1.0 + x) for x in fake])
    raise AssertionError(mode)


def _hand_generator(mode: str, fake: list[float]) -> float:
    if mode == "lsgan":
        return _mean([(x - 1.0) ** 2 for x in fake])
    if mode == "vanilla":  # non-saturating: -log D(G(z))
        return _mean([-math.log(_sigmoid(x)) for x in fake])
    if mode == "minimax":  # saturating: log(1 - D(G(z)))
        return _mean([math.log(1.0 - _sigmoid(x)) for x in fake])
    if mode in ("wgangp", "hinge"):
        return -_mean(fake)
    raise AssertionError(mode)


def test_modes_are_the_documented_five():
    assert set(GAN_MODES) == {"lsgan", "vanilla", "minimax", "wgangp", "hinge"}


@pytest.mark.parametrize("mode", GAN_MODES)
def test_discriminator_terms_match_hand_values(mode):
    real_t, fake_t = _hand_terms(mode, _flat(REAL), _flat(FAKE))
    loss_real, loss_fake = discriminator_terms(mode, torch.tensor(REAL), torch.tensor(FAKE))
    assert loss_real.dim() == 0 and loss_fake.dim() == 0
    assert loss_real.item() == pytest.approx(real_t, rel=1e-6, abs=1e-7)
    assert loss_fake.item() == pytest.approx(fake_t, rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("mode", GAN_MODES)
def test_discriminator_loss_is_half_the_sum_of_terms(mode):
    real_t, fake_t = _hand_terms(mode, _flat(REAL), _flat(FAKE))
    loss = discriminator_loss(mode, torch.tensor(REAL), torch.tensor(FAKE))
    assert loss.item() == pytest.approx(0.5 * (real_t + fake_t), rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("mode", GAN_MODES)
def test_generator_loss_matches_hand_values(mode):
    loss = generator_loss(mode, torch.tensor(FAKE))
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(_hand_generator(mode, _flat(FAKE)), rel=1e-6, abs=1e-7)


def test_specific_hand_numbers():
    """A few values written out as plain numbers, independent of the helper functions."""
    logits = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    # lsgan generator: mean((x - 1)^2) = (0.25 + 4 + 1 + 1) / 4
    assert generator_loss("lsgan", logits).item() == pytest.approx(6.25 / 4)
    # wgangp discriminator: mean(fake) - mean(real) = 0.375 - 0.375 = 0, halved
    assert discriminator_loss("wgangp", logits, logits).item() == pytest.approx(0.0, abs=1e-7)
    # hinge D on real: relu(0.5) + relu(2) + relu(-1) + relu(1) = 3.5, / 4
    real_term, fake_term = discriminator_terms("hinge", logits, logits)
    assert real_term.item() == pytest.approx(3.5 / 4)
    # hinge D on fake: relu(1.5) + relu(0) + relu(3) + relu(1) = 5.5, / 4
    assert fake_term.item() == pytest.approx(5.5 / 4)
    # vanilla G at logit 0: -log(1/2)
    assert generator_loss("vanilla", torch.zeros(3)).item() == pytest.approx(math.log(2.0))
    # minimax G at logit 0: log(1/2) (negative: the saturating form is minimised)
    assert generator_loss("minimax", torch.zeros(3)).item() == pytest.approx(-math.log(2.0))


def test_vanilla_and_minimax_generators_differ_in_the_right_direction():
    """Non-saturating loss falls as the fake logit rises; so does the saturating one, but the
    saturating one has a vanishing gradient where the discriminator rejects fakes confidently."""
    confident_reject = torch.tensor([-8.0], requires_grad=True)
    generator_loss("vanilla", confident_reject).backward()
    grad_ns = confident_reject.grad.item()
    confident_reject.grad = None
    generator_loss("minimax", confident_reject).backward()
    grad_sat = confident_reject.grad.item()
    # d/dx -log s(x) = s(x) - 1 ; d/dx log(1 - s(x)) = -s(x)
    s = _sigmoid(-8.0)
    assert grad_ns == pytest.approx(s - 1.0, rel=1e-5)
    assert grad_sat == pytest.approx(-s, rel=1e-4)
    assert abs(grad_sat) < 1e-3 < abs(grad_ns)


@pytest.mark.parametrize("mode", ["lsgan", "vanilla", "minimax"])
@pytest.mark.parametrize("smoothing", [0.1, 0.3])
def test_label_smoothing_moves_only_the_real_target(mode, smoothing):
    real_t, fake_t = _hand_terms(mode, _flat(REAL), _flat(FAKE), smoothing)
    loss_real, loss_fake = discriminator_terms(
        mode, torch.tensor(REAL), torch.tensor(FAKE), label_smoothing=smoothing
    )
    assert loss_real.item() == pytest.approx(real_t, rel=1e-6)
    assert loss_fake.item() == pytest.approx(fake_t, rel=1e-6)
    # and it really differs from the unsmoothed value
    unsmoothed, _ = discriminator_terms(mode, torch.tensor(REAL), torch.tensor(FAKE))
    assert loss_real.item() != pytest.approx(unsmoothed.item(), rel=1e-4)


def test_lsgan_smoothed_target_is_one_minus_s():
    # with real scores exactly 1 - s, the lsgan real term is 0
    s = 0.2
    real = torch.full((2, 3), 1.0 - s)
    loss_real, _ = discriminator_terms("lsgan", real, torch.zeros(2, 3), label_smoothing=s)
    assert loss_real.item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("mode", ["wgangp", "hinge"])
def test_label_smoothing_does_not_affect_margin_losses(mode):
    a = discriminator_terms(mode, torch.tensor(REAL), torch.tensor(FAKE), label_smoothing=0.3)
    b = discriminator_terms(mode, torch.tensor(REAL), torch.tensor(FAKE))
    assert a[0].item() == pytest.approx(b[0].item())
    assert a[1].item() == pytest.approx(b[1].item())


@pytest.mark.parametrize("mode", GAN_MODES)
def test_low_precision_inputs_give_float32_losses(mode):
    real = torch.tensor(REAL, dtype=torch.bfloat16)
    fake = torch.tensor(FAKE, dtype=torch.bfloat16)
    assert discriminator_loss(mode, real, fake).dtype == torch.float32
    assert generator_loss(mode, fake).dtype == torch.float32


@pytest.mark.parametrize("bad", ["LSGAN", "wgan", "", "gp"])
def test_unknown_mode_raises(bad):
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    with pytest.raises(ValueError, match="unknown GAN mode"):
        discriminator_terms(bad, real, fake)
    with pytest.raises(ValueError, match="unknown GAN mode"):
        discriminator_loss(bad, real, fake)
    with pytest.raises(ValueError, match="unknown GAN mode"):
        generator_loss(bad, fake)


# -- gradient penalty -------------------------------------------------------------------------


def _linear_d(w: torch.Tensor):
    """D(x) = sum(w * x) per sample: its input gradient is w everywhere, of norm ||w||."""
    return lambda x: (x * w).flatten(1).sum(1)


def _batch(seed: int, shape=(3, 2, 4, 4)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g)


@pytest.mark.parametrize("scale", [0.1, 0.5, 1.0, 3.0])
def test_gradient_penalty_linear_discriminator_is_analytic(scale):
    w = torch.full((2, 4, 4), scale)  # ||w|| = scale * sqrt(32)
    norm = scale * math.sqrt(32)
    real, fake = _batch(0)
    gp = gradient_penalty(_linear_d(w), real, fake)
    assert gp.item() == pytest.approx((norm - 1.0) ** 2, rel=1e-5)
    gp2 = gradient_penalty(_linear_d(w), real, fake, target=2.5)
    assert gp2.item() == pytest.approx((norm - 2.5) ** 2, rel=1e-5)


@pytest.mark.parametrize("scale,target", [(0.1, 1.0), (0.5, 1.0), (1.0, 4.0), (3.0, 1.0)])
def test_gradient_penalty_one_sided(scale, target):
    w = torch.full((2, 4, 4), scale)
    norm = scale * math.sqrt(32)
    real, fake = _batch(1)
    gp = gradient_penalty(_linear_d(w), real, fake, target=target, one_sided=True)
    assert gp.item() == pytest.approx(max(0.0, norm - target) ** 2, rel=1e-5, abs=1e-10)
    if norm < target:
        assert gp.item() == 0.0


def test_gradient_penalty_quadratic_discriminator_matches_analytic_interpolates():
    """D(x) = sum(x^2) has gradient 2 x_hat; alphas come from the same seeded generator."""
    real, fake = _batch(2)
    seed = 1234
    gp = gradient_penalty(
        lambda x: x.square().flatten(1).sum(1), real, fake,
        generator=torch.Generator().manual_seed(seed),
    )
    alpha = torch.rand((3, 1, 1, 1), generator=torch.Generator().manual_seed(seed))
    x_hat = alpha * real + (1 - alpha) * fake
    expected = _mean([(2.0 * x_hat[i].norm().item() - 1.0) ** 2 for i in range(3)])
    assert gp.item() == pytest.approx(expected, rel=1e-5)


def test_gradient_penalty_matches_autograd_reference_for_a_conv_discriminator():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.Tanh(), torch.nn.Conv2d(4, 1, 3)
    )
    real, fake = _batch(3)
    seed = 99
    gp = gradient_penalty(net, real, fake, generator=torch.Generator().manual_seed(seed))

    # reference: one sample at a time, its own autograd call, norms by hand
    alpha = torch.rand((3, 1, 1, 1), generator=torch.Generator().manual_seed(seed))
    penalties = []
    for i in range(3):
        x = (alpha[i] * real[i] + (1 - alpha[i]) * fake[i]).unsqueeze(0).requires_grad_(True)
        (g,) = torch.autograd.grad(net(x).sum(), x)
        norm = math.sqrt(sum(v * v for v in g.flatten().tolist()))
        penalties.append((norm - 1.0) ** 2)
    assert gp.item() == pytest.approx(_mean(penalties), rel=1e-4)


def test_gradient_penalty_backpropagates_into_the_discriminator():
    """For D(x) = sum(w * x): gp = (||w|| - 1)^2, so d gp / d w = 2 (||w|| - 1) w / ||w||."""
    w = torch.tensor([[0.3, -1.2], [0.8, 2.0]], requires_grad=True)
    real, fake = _batch(4, shape=(5, 2, 2))
    gp = gradient_penalty(_linear_d(w), real, fake)
    gp.backward()
    norm = math.sqrt(0.09 + 1.44 + 0.64 + 4.0)
    expected = 2.0 * (norm - 1.0) / norm * w.detach()
    torch.testing.assert_close(w.grad, expected, rtol=1e-5, atol=1e-6)


def test_gradient_penalty_does_not_backpropagate_into_its_inputs():
    real = torch.randn(2, 3, requires_grad=True)
    fake = torch.randn(2, 3, requires_grad=True)
    w = torch.ones(3, requires_grad=True)
    gradient_penalty(_linear_d(w), real, fake).backward()
    assert real.grad is None and fake.grad is None
    assert w.grad is not None


# -- cycle and identity -------------------------------------------------------------------------


def test_cycle_loss_is_weighted_l1():
    rec = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    orig = torch.tensor([[0.0, 1.0], [1.5, -0.25]])
    # |0.5| + |-2| + |0.5| + |0.25| = 3.25, mean 0.8125
    assert cycle_loss(rec, orig, 10.0).item() == pytest.approx(8.125)
    assert cycle_loss(rec, orig, 1.0).item() == pytest.approx(0.8125)
    assert cycle_loss(rec, orig, 0.0).item() == 0.0
    assert cycle_loss(orig, orig, 10.0).item() == 0.0


def test_identity_loss_is_weighted_l1():
    same = torch.tensor([1.0, 2.0, 3.0, 4.0])
    orig = torch.tensor([1.0, 0.0, 4.0, 8.0])
    # |0| + |2| + |-1| + |-4| = 7, mean 1.75
    assert identity_loss(same, orig, 5.0).item() == pytest.approx(8.75)
    assert identity_loss(same, orig, 0.5).item() == pytest.approx(0.875)


def test_cycle_loss_gradient_is_sign_over_n():
    rec = torch.tensor([0.5, -1.0, 2.0, 0.25], requires_grad=True)
    orig = torch.tensor([0.0, 0.0, 3.0, 0.0])
    cycle_loss(rec, orig, 2.0).backward()
    torch.testing.assert_close(rec.grad, torch.tensor([0.5, -0.5, -0.5, 0.5]))
