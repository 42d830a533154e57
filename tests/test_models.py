"""Tests for cyclegan_cli.models: shapes, reference layout, parameter counts, init, norms."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cyclegan_cli.models import (
    DISCRIMINATORS,
    GENERATORS,
    INIT_TYPES,
    NORMS,
    ResnetGenerator,
    UnetGenerator,
    build_discriminator,
    build_generator,
    count_parameters,
    generator_size_multiple,
    init_weights,
    norm_layer,
    uses_bias,
)

SMALL = 8  # ngf/ndf for shape tests: the layout does not depend on the width


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _convs(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("resnet_9blocks", 128),
        ("resnet_9blocks", 256),
        ("resnet_6blocks", 128),
        ("resnet_6blocks", 256),
        ("unet_256", 256),
        ("unet_128", 128),
        ("unet_128", 256),
    ],
)
def test_generator_output_shape_and_range(name: str, size: int) -> None:
    net = build_generator(name, ngf=SMALL).eval()
    x = torch.rand(1, 3, size, size) * 2 - 1
    with torch.no_grad():
        y = net(x)
    assert y.shape == (1, 3, size, size)
    assert y.min() >= -1.0 and y.max() <= 1.0
    assert y.std() > 0  # not a constant map


def test_generator_channels() -> None:
    net = build_generator("resnet_6blocks", input_nc=1, output_nc=2, ngf=SMALL).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 1, 32, 32)).shape == (2, 2, 32, 32)


@pytest.mark.parametrize("name", ["resnet_9blocks", "resnet_6blocks"])
@pytest.mark.parametrize(("h", "w"), [(68, 100), (36, 52), (8, 12)])
def test_resnet_any_multiple_of_four(name: str, h: int, w: int) -> None:
    net = build_generator(name, ngf=SMALL).eval()
    with torch.no_grad():
        y = net(torch.randn(1, 3, h, w))
    assert y.shape == (1, 3, h, w)
    assert y.abs().max() <= 1.0


def test_resnet_minimum_size() -> None:
    # Reflection padding needs a bottleneck of at least 2: 4 -> 1 is too small.
    net = build_generator("resnet_6blocks", ngf=SMALL).eval()
    with pytest.raises(RuntimeError), torch.no_grad():
        net(torch.randn(1, 3, 4, 12))


def test_resnet_non_multiple_changes_size() -> None:
    # Why size_multiple matters: 66 -> 33 -> 17 -> 34 -> 68.
    net = build_generator("resnet_6blocks", ngf=SMALL).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 66, 64)).shape[-2:] == (68, 64)


def test_size_multiples() -> None:
    assert generator_size_multiple("resnet_9blocks") == 4
    assert generator_size_multiple("resnet_6blocks") == 4
    assert generator_size_multiple("unet_256") == 256
    assert generator_size_multiple("unet_128") == 128
    for name in GENERATORS:
        assert build_generator(name, ngf=2).size_multiple == generator_size_multiple(name)
    assert ResnetGenerator.size_multiple == 4
    assert UnetGenerator(num_downs=6, ngf=2).size_multiple == 64


@pytest.mark.parametrize(("n_layers", "out"), [(1, 126), (2, 62), (3, 30), (4, 14), (5, 6)])
def test_patchgan_output_size(n_layers: int, out: int) -> None:
    net = build_discriminator("n_layers", ndf=SMALL, n_layers=n_layers).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 256, 256)).shape == (1, 1, out, out)


def test_basic_is_three_layer_patchgan() -> None:
    basic = build_discriminator("basic", ndf=SMALL, n_layers=5).eval()  # n_layers ignored
    with torch.no_grad():
        y = basic(torch.randn(2, 3, 256, 256))
    assert y.shape == (2, 1, 30, 30)
    assert isinstance(basic.model[-1], nn.Conv2d)  # raw logits: no sigmoid at the end
    assert set(basic.state_dict()) == set(
        build_discriminator("n_layers", ndf=SMALL, n_layers=3).state_dict()
    )


@pytest.mark.parametrize(("h", "w"), [(256, 256), (37, 53)])
def test_pixel_discriminator_keeps_size(h: int, w: int) -> None:
    net = build_discriminator("pixel", ndf=SMALL).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 3, h, w)).shape == (2, 1, h, w)


# ------------------------------------------------------------------ reference layout


def test_resnet_state_dict_matches_reference_layout() -> None:
    ngf = 64
    g = build_generator("resnet_9blocks", ngf=ngf)
    expected = {
        "model.1": (ngf, 3, 7, 7),
        "model.4": (2 * ngf, ngf, 3, 3),
        "model.7": (4 * ngf, 2 * ngf, 3, 3),
        "model.19": (4 * ngf, 2 * ngf, 3, 3),  # ConvTranspose2d: (in, out, k, k)
        "model.22": (2 * ngf, ngf, 3, 3),
        "model.26": (3, ngf, 7, 7),
    }
    for i in range(10, 19):
        for j in (1, 5):
            expected[f"model.{i}.conv_block.{j}"] = (4 * ngf, 4 * ngf, 3, 3)
    want = {f"{k}.weight": s for k, s in expected.items()}
    want |= {f"{k}.bias": (s[1] if k in ("model.19", "model.22") else s[0],)
             for k, s in expected.items()}
    got = {k: tuple(v.shape) for k, v in g.state_dict().items()}
    assert got == want
    assert "model.1.weight" in got and "model.10.conv_block.1.weight" in got


def test_resnet_dropout_layout() -> None:
    keys = build_generator("resnet_6blocks", ngf=SMALL, use_dropout=True).state_dict()
    assert "model.10.conv_block.6.weight" in keys
    assert "model.10.conv_block.5.weight" not in keys


def test_unet_state_dict_nesting() -> None:
    keys = set(build_generator("unet_256", ngf=SMALL).state_dict())
    assert "model.model.0.weight" in keys  # outermost down conv
    assert "model.model.3.weight" in keys  # outermost up conv
    assert "model.model.1.model.1.weight" in keys  # second level down conv
    assert "model.model.1.model.3.model.1.weight" in keys
    # 8 levels: the innermost block sits 7 submodules deep
    innermost = "model.model" + ".1.model" + ".3.model" * 6 + ".1.weight"
    assert innermost in keys
    assert not any("running" in k for k in keys)  # instance norm keeps no statistics


def test_discriminator_state_dict_keys() -> None:
    d = build_discriminator("basic")
    assert list(d.state_dict()) == [
        f"model.{i}.{p}" for i in (0, 2, 5, 8, 11) for p in ("weight", "bias")
    ]
    assert tuple(d.state_dict()["model.8.weight"].shape) == (512, 256, 4, 4)
    p = build_discriminator("pixel")
    assert list(p.state_dict()) == [f"net.{i}.{k}" for i in (0, 2, 5) for k in ("weight", "bias")]


def test_state_dict_round_trip_strict() -> None:
    for name in GENERATORS:
        a = build_generator(name, ngf=4).eval()
        b = build_generator(name, ngf=4).eval()
        b.load_state_dict(a.state_dict(), strict=True)
        x = torch.randn(1, 3, 256, 256)
        with torch.no_grad():
            assert torch.equal(a(x), b(x))


# ---------------------------------------------------------------------- parameters


def test_parameter_counts_match_reference() -> None:
    # Reference prints "Total number of parameters : 11.378 M" for G and 2.765 M for D.
    assert count_parameters(build_generator("resnet_9blocks")) == 11_378_179
    assert count_parameters(build_generator("resnet_6blocks")) == 7_837_699
    assert count_parameters(build_discriminator("basic")) == 2_764_737
    # pix2pix unet_256 with batch norm: "54.414 M"
    assert count_parameters(build_generator("unet_256", norm="batch")) == 54_413_955


def test_count_parameters_small() -> None:
    assert count_parameters(nn.Conv2d(3, 5, 3)) == 3 * 5 * 9 + 5
    frozen = nn.Linear(4, 2)
    frozen.requires_grad_(False)
    assert count_parameters(frozen) == 10


# ------------------------------------------------------------------------------ init


def _init_probe() -> nn.Sequential:
    net = nn.Sequential(
        nn.Conv2d(128, 256, 3), nn.ConvTranspose2d(256, 64, 4), nn.Linear(512, 256),
        nn.BatchNorm2d(8192),
    )
    for m in net:
        nn.init.constant_(m.bias, 0.5)
    return net


@pytest.mark.parametrize("init_type", INIT_TYPES)
def test_init_zeroes_biases(init_type: str) -> None:
    net = init_weights(_init_probe(), init_type, gain=0.02)
    for m in net[:3]:
        assert torch.count_nonzero(m.bias) == 0
    assert torch.count_nonzero(net[3].bias) == 0


def test_init_normal() -> None:
    net = init_weights(_init_probe(), "normal", gain=0.02)
    for m in net[:3]:
        assert m.weight.std().item() == pytest.approx(0.02, rel=0.05)
        assert abs(m.weight.mean().item()) < 1e-3
    bn = net[3]
    assert bn.weight.mean().item() == pytest.approx(1.0, abs=2e-3)
    assert bn.weight.std().item() == pytest.approx(0.02, rel=0.05)


def test_init_xavier() -> None:
    net = init_weights(_init_probe(), "xavier", gain=0.02)
    w = net[0].weight  # fan_in = 128*9, fan_out = 256*9
    assert w.std().item() == pytest.approx(0.02 * math.sqrt(2 / (128 * 9 + 256 * 9)), rel=0.05)


def test_init_kaiming() -> None:
    net = init_weights(_init_probe(), "kaiming", gain=0.02)  # gain is not used by kaiming
    assert net[0].weight.std().item() == pytest.approx(math.sqrt(2 / (128 * 9)), rel=0.05)
    assert net[2].weight.std().item() == pytest.approx(math.sqrt(2 / 512), rel=0.05)


def test_init_orthogonal() -> None:
    gain = 0.02
    net = init_weights(_init_probe(), "orthogonal", gain=gain)
    for m in net[:3]:
        w = m.weight.detach().flatten(1)  # rows <= cols for every probe layer
        assert w.shape[0] <= w.shape[1]
        gram = w @ w.T / gain**2
        torch.testing.assert_close(gram, torch.eye(w.shape[0]), atol=1e-4, rtol=0)


def test_build_applies_init_and_gain() -> None:
    d = build_discriminator("basic", init_gain=0.05)
    assert d.model[8].weight.std().item() == pytest.approx(0.05, rel=0.05)
    assert torch.count_nonzero(d.model[0].bias) == 0
    g = build_generator("resnet_6blocks", ngf=32, init_type="kaiming")
    w = g.model[10].conv_block[1].weight
    assert w.std().item() == pytest.approx(math.sqrt(2 / (128 * 9)), rel=0.05)


def test_init_weights_returns_net_and_rejects_unknown() -> None:
    net = nn.Conv2d(1, 1, 1)
    assert init_weights(net) is net
    with pytest.raises(ValueError, match="normal, xavier, kaiming, orthogonal"):
        init_weights(net, "uniform")
    with pytest.raises(ValueError, match="orthogonal"):
        build_generator("resnet_6blocks", ngf=2, init_type="bogus")


# ----------------------------------------------------------------------------- norms


def _norm_follows(net: nn.Module) -> list[tuple[nn.Module, nn.Module]]:
    """(conv, next module) pairs for every conv inside a Sequential."""
    pairs = []
    for seq in (m for m in net.modules() if isinstance(m, nn.Sequential)):
        mods = list(seq)
        for a, b in zip(mods, mods[1:], strict=False):
            if isinstance(a, (nn.Conv2d, nn.ConvTranspose2d)):
                pairs.append((a, b))
    return pairs


@pytest.mark.parametrize("norm", NORMS)
def test_every_norm_builds_and_runs(norm: str) -> None:
    for name in GENERATORS:
        g = build_generator(name, ngf=4, norm=norm).train()
        size = max(generator_size_multiple(name), 16)
        y = g(torch.randn(2, 3, size, size))
        assert y.shape == (2, 3, size, size)
        assert torch.isfinite(y).all()
    for name in DISCRIMINATORS:
        d = build_discriminator(name, ndf=4, norm=norm).train()
        assert torch.isfinite(d(torch.randn(2, 3, 64, 64))).all()


def test_batch_norm_has_no_conv_bias() -> None:
    for net in (
        build_generator("resnet_6blocks", ngf=4, norm="batch"),
        build_generator("unet_128", ngf=4, norm="batch"),
        build_discriminator("basic", ndf=4, norm="batch"),
        build_discriminator("pixel", ndf=4, norm="batch"),
    ):
        pairs = [(c, n) for c, n in _norm_follows(net) if isinstance(n, nn.BatchNorm2d)]
        assert pairs
        assert all(c.bias is None for c, _ in pairs)
        bn = next(m for m in net.modules() if isinstance(m, nn.BatchNorm2d))
        assert bn.affine and bn.track_running_stats
        assert any(k.endswith("running_mean") for k in net.state_dict())


def test_instance_norm_keeps_conv_bias_and_no_state() -> None:
    net = build_generator("resnet_6blocks", ngf=4, norm="instance")
    pairs = [(c, n) for c, n in _norm_follows(net) if isinstance(n, nn.InstanceNorm2d)]
    assert pairs and all(c.bias is not None for c, _ in pairs)
    norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms and all(not m.affine and not m.track_running_stats for m in norms)
    assert sum(p.numel() for m in norms for p in m.parameters()) == 0


def test_no_norm_uses_identity_and_bias() -> None:
    net = build_generator("resnet_6blocks", ngf=4, norm="none")
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) for m in net.modules())
    assert all(c.bias is not None for c in _convs(net))
    assert isinstance(norm_layer("none")(16), nn.Identity)


def test_norm_helpers() -> None:
    assert uses_bias("instance") and uses_bias("none") and not uses_bias("batch")
    assert isinstance(norm_layer("instance")(3), nn.InstanceNorm2d)
    assert isinstance(norm_layer("batch")(3), nn.BatchNorm2d)
    for bad in ("layer", "", "Batch"):
        with pytest.raises(ValueError, match="instance, batch, none"):
            norm_layer(bad)
        with pytest.raises(ValueError, match="instance, batch, none"):
            uses_bias(bad)


# ------------------------------------------------------------------------ bad names


def test_unknown_names_raise() -> None:
    with pytest.raises(ValueError, match="resnet_9blocks, resnet_6blocks, unet_256, unet_128"):
        build_generator("resnet_12blocks")
    with pytest.raises(ValueError, match="basic, n_layers, pixel"):
        build_discriminator("patch")
    with pytest.raises(ValueError, match="unet_256"):
        generator_size_multiple("unet_512")
    with pytest.raises(ValueError, match="instance, batch, none"):
        build_generator("unet_128", norm="group")
    with pytest.raises(ValueError, match="instance, batch, none"):
        build_discriminator("basic", norm="group")
    with pytest.raises(ValueError, match="reflect"):
        ResnetGenerator(padding_type="circular")


# ------------------------------------------------------------------ residual generators


@pytest.mark.parametrize("name", ["resnet_6blocks", "resnet_9blocks"])
def test_residual_generator_starts_as_identity(name: str) -> None:
    net = build_generator(name, ngf=SMALL, residual=True).eval()
    x = torch.rand(2, 3, 32, 48) * 1.9 - 0.95
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)
    # same parameters and state-dict keys as the plain generator: checkpoints stay comparable
    plain = build_generator(name, ngf=SMALL)
    assert net.state_dict().keys() == plain.state_dict().keys()
    assert count_parameters(net) == count_parameters(plain)


def test_residual_generator_learns_a_colour_shift_and_stays_in_range() -> None:
    net = build_generator("resnet_6blocks", ngf=SMALL, residual=True)
    x = torch.rand(4, 3, 16, 16) * 2 - 1  # includes values at +-1 (clamped before atanh)
    x[0, :, 0, 0] = torch.tensor([-1.0, 1.0, 1.0])
    target = (x + torch.tensor([0.2, 0.0, -0.2]).view(1, 3, 1, 1)).clamp(-1, 1)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    first = None
    for _ in range(60):
        loss = (net(x) - target).abs().mean()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.isfinite(loss) and loss.item() < 0.5 * first
    with torch.no_grad():
        y = net(x)
    assert y.min() >= -1.0 and y.max() <= 1.0


def test_residual_needs_a_resnet_generator() -> None:
    with pytest.raises(ValueError, match="residual generators are resnet_9blocks"):
        build_generator("unet_128", residual=True)
    with pytest.raises(ValueError, match="as many output channels"):
        ResnetGenerator(3, 1, residual=True)
