"""The training levers measured by the known-answer suite: the per-pixel colour branch of
residual generators and the moving average (EMA) of the generator weights."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from rich.console import Console

from cyclegan_cli.config import TrainConfig
from cyclegan_cli.errors import CganError
from cyclegan_cli.models import build_generator

from .conftest import tiny_config


def test_colour_branch_starts_as_identity_and_holds_a_colour_map() -> None:
    torch.manual_seed(0)
    net = build_generator("resnet_6blocks", ngf=8, residual=True, colour_branch=True)
    x = torch.rand(2, 3, 32, 32) * 1.8 - 0.9
    assert torch.allclose(net(x), x, atol=1e-5)  # zero start: the identity
    # the branch sees absolute colour: fitting a fixed channel mix is quick and exact-ish,
    # while the main network (zeroed here) cannot see colour levels through instance norm
    mix = torch.tensor([[0.6, 0.3, 0.1], [0.1, 0.7, 0.2], [0.2, 0.1, 0.7]])
    target = torch.einsum("ij,bjhw->bihw", mix, x)
    start = (x - target).abs().mean().item()
    opt = torch.optim.Adam(net.colour.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        loss = (net(x) - target).abs().mean()
        loss.backward()
        opt.step()
    assert loss.item() < 0.25 * start
    with pytest.raises(ValueError, match="residual"):
        build_generator("resnet_6blocks", ngf=8, colour_branch=True)
    with pytest.raises(CganError, match="--colour-branch needs --residual"):
        TrainConfig(recipe="reference", colour_branch=True).validate()


def test_ema_generators_are_averaged_exported_and_resumed(tiny_data, tmp_path) -> None:
    from cyclegan_cli.export import export_run
    from cyclegan_cli.inference import load_model
    from cyclegan_cli.rundir import load_checkpoint, load_generator
    from cyclegan_cli.training.loop import train

    cfg = tiny_config(tiny_data, tmp_path, max_steps=6, ema=0.9, residual=True,
                      colour_branch=True)
    console = Console(file=io.StringIO())
    result = train(cfg, console=console, quiet=True)
    state = load_checkpoint(result.run_dir / "checkpoints" / "latest.pt")
    nets = state["trainer"]["nets"]
    assert state["exports"] == {"AtoB": "G_AB_ema", "BtoA": "G_BA_ema"}
    assert state["trainer"]["ema_updates"] == 6
    for name in ("G_AB", "G_BA"):  # averaged: close to the trained weights, not equal
        live, avg = nets[name], nets[f"{name}_ema"]
        assert set(live) == set(avg)
        diff = max((live[k].float() - avg[k].float()).abs().max().item() for k in live)
        assert 0 < diff < 0.05
        assert not any(v.requires_grad for v in avg.values())
    net, _ = load_generator(result.run_dir, "AtoB")
    ema = nets["G_AB_ema"]
    assert all(torch.equal(v, ema[k]) for k, v in net.state_dict().items())
    out = export_run(result.run_dir, "AtoB", tmp_path / "w", name="ema")[0]
    x = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    with torch.no_grad():
        ref = net(torch.from_numpy(x).permute(2, 0, 1)[None].float() / 127.5 - 1)
    got = load_model(out.path).translate_array(x).astype(np.float32) / 127.5 - 1
    assert np.abs(got - ref[0].permute(1, 2, 0).numpy()).max() < 2.5 / 127.5
    # resume continues the average where it was
    again = train(None, resume=result.run_dir, overrides={"max_steps": 8}, console=console,
                  quiet=True)
    assert load_checkpoint(again.run_dir / "checkpoints" / "latest.pt")[
        "trainer"]["ema_updates"] == 8
    with pytest.raises(CganError, match="--ema"):
        TrainConfig(ema=1.0).validate()


def test_resize_conv_upsampling_has_the_same_size_and_starts_as_identity() -> None:
    torch.manual_seed(0)
    nets = {up: build_generator("resnet_6blocks", ngf=8, residual=True, upsample=up)
            for up in ("transpose", "resize")}
    counts = {up: sum(p.numel() for p in net.parameters()) for up, net in nets.items()}
    assert counts["transpose"] == counts["resize"]
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in nets["resize"].modules())
    x = torch.rand(1, 3, 36, 44) * 1.8 - 0.9  # any multiple of 4
    assert torch.allclose(nets["resize"](x), x, atol=1e-5)
    plain = build_generator("resnet_6blocks", ngf=8, upsample="resize")
    assert plain(x).shape == x.shape
    with pytest.raises(ValueError, match="upsample"):
        build_generator("unet_128", ngf=8, upsample="resize")
    with pytest.raises(ValueError, match="upsample"):
        build_generator("resnet_6blocks", ngf=8, upsample="bicubic")
    with pytest.raises(CganError, match="--upsample resize needs a ResNet"):
        TrainConfig(netG="unet_128", upsample="resize").validate()


def test_discriminator_translation_moves_each_image_and_keeps_gradients() -> None:
    from cyclegan_cli.training.augment import translate

    torch.manual_seed(0)
    x = torch.rand(8, 3, 32, 32, requires_grad=True)
    y = translate(x)
    assert y.shape == x.shape
    for i in range(8):  # each image is its own whole-pixel shift of the input, zero filled
        found = False
        for dy in range(-4, 5):
            for dx in range(-4, 5):
                moved = torch.zeros_like(x[i])
                src = x[i, :, max(dy, 0):32 + min(dy, 0), max(dx, 0):32 + min(dx, 0)]
                moved[:, max(-dy, 0):32 + min(-dy, 0), max(-dx, 0):32 + min(-dx, 0)] = src
                found |= torch.equal(moved, y[i])
        assert found, i
    assert len({tuple(y[i].flatten()[:50].tolist()) for i in range(8)}) > 1  # not all alike
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    cl = x.detach().contiguous(memory_format=torch.channels_last)
    assert translate(cl).is_contiguous(memory_format=torch.channels_last)
