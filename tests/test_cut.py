"""CUT and FastCUT: PatchNCE against a hand computation, the tapped encoder layers, the
projector's resume, flip equivariance, one-direction export and use, and a tiny run that
learns."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from rich.console import Console
from typer.testing import CliRunner

from cyclegan_cli.cli import app
from cyclegan_cli.config import TrainConfig
from cyclegan_cli.data.images import list_images, load_rgb
from cyclegan_cli.errors import CganError
from cyclegan_cli.evaluation.metrics import psnr
from cyclegan_cli.export import export_run
from cyclegan_cli.inference import load_model
from cyclegan_cli.losses import patch_nce_loss
from cyclegan_cli.models import build_generator
from cyclegan_cli.training.amp import Amp
from cyclegan_cli.training.families import CUT, FAMILIES, FastCUT
from cyclegan_cli.training.families.cut import GeneratorWithNCE
from cyclegan_cli.training.loop import train
from cyclegan_cli.training.speed import SpeedPlan
from tests.conftest import straight_and_resumed, tiny_config

CPU = torch.device("cpu")


def quiet() -> Console:
    return Console(file=open(os.devnull, "w"))  # noqa: SIM115


def small(**changes) -> TrainConfig:
    return TrainConfig(**({"model": "cut", "netG": "resnet_6blocks", "ngf": 4, "ndf": 4,
                           "seed": 0} | changes))


# -- PatchNCE ------------------------------------------------------------------------------------
def _unit(*shape: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def _by_hand(q: torch.Tensor, k: torch.Tensor, batch: int, t: float) -> float:
    """-log softmax of each query's own key among the same image's keys, averaged."""
    per_image = len(q) // batch
    losses = []
    for b in range(batch):
        for i in range(per_image):
            row = b * per_image + i
            pos = math.exp(float(q[row] @ k[row]) / t)
            neg = sum(math.exp(float(q[row] @ k[b * per_image + j]) / t)
                      for j in range(per_image) if j != i)
            neg += math.exp(-10.0 / t)  # the masked own similarity, as the reference
            losses.append(-math.log(pos / (pos + neg)))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("t", [0.07, 0.5])
def test_patch_nce_matches_a_hand_computation(t) -> None:
    q, k = _unit(6, 4, seed=1), _unit(6, 4, seed=2)  # 2 images x 3 patches, 4-d features
    got = float(patch_nce_loss(q, k, batch=2, temperature=t))
    assert got == pytest.approx(_by_hand(q, k, 2, t), rel=1e-5)
    # negatives come from the same image only: one batch of six patches is another loss
    assert got != pytest.approx(_by_hand(q, k, 1, t), rel=1e-3)
    # a query equal to its key, the others far away: near zero
    assert float(patch_nce_loss(k, k, 2, 0.07)) < float(patch_nce_loss(q, k, 2, 0.07))


def test_patch_nce_keys_carry_no_gradient() -> None:
    q = _unit(4, 8, seed=3).requires_grad_(True)
    k = _unit(4, 8, seed=4).requires_grad_(True)
    patch_nce_loss(q, k, batch=1).backward()
    assert q.grad is not None and q.grad.abs().sum() > 0 and k.grad is None


# -- the generator's taps and the projector ------------------------------------------------------
def test_encode_returns_the_documented_layers() -> None:
    g = build_generator("resnet_6blocks", ngf=4)
    assert g.NCE_LAYERS == (0, 4, 7, 10, 14)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    feats = g.encode(x)
    expected, y = [], x
    for index, layer in enumerate(g.model):
        y = layer(y)
        if index in g.NCE_LAYERS:
            expected.append(y)
    assert all(torch.equal(a, b) for a, b in zip(feats, expected, strict=True))
    assert [tuple(f.shape[1:]) for f in feats] == [(3, 38, 38), (8, 16, 16), (16, 8, 8),
                                                   (16, 8, 8), (16, 8, 8)]
    assert isinstance(g.model[0], torch.nn.ReflectionPad2d)  # the input, padded
    assert all(isinstance(g.model[i], torch.nn.Conv2d) for i in (4, 7))  # the two downsamplings
    assert type(g.model[10]).__name__ == type(g.model[14]).__name__ == "ResnetBlock"
    with pytest.raises(ValueError, match="indices below"):
        g.encode(x, (0, 99))


def test_the_projector_samples_the_same_positions_for_queries_and_keys() -> None:
    family = CUT(small(), CPU, Amp(CPU), SpeedPlan.plain())
    proj = family.model.F
    assert [m[0].in_features for m in proj.mlps] == [3, 8, 16, 16, 16]
    feats = family.model.G.encode(torch.rand(2, 3, 32, 32))
    torch.manual_seed(0)
    out, ids = proj(feats, 20)
    assert [tuple(o.shape) for o in out] == [(40, 256)] * 5  # 2 images x 20 patches
    assert all(torch.allclose(o.norm(dim=1), torch.ones(40)) for o in out)
    again, same = proj(feats, 20, ids)
    assert all(torch.equal(a, b) for a, b in zip(out, again, strict=True))
    assert all(x is y for x, y in zip(same, ids, strict=True))
    every, _ = proj(feats, 10_000)  # more patches than positions: every position once
    assert [o.shape[0] for o in every] == [2 * 38 * 38, 2 * 16 * 16] + [2 * 8 * 8] * 3


def test_families_and_their_defaults() -> None:
    assert FAMILIES["cut"] is CUT and FAMILIES["fastcut"] is FastCUT
    cut, fast = TrainConfig(model="cut"), TrainConfig(model="fastcut")
    assert (cut.lambda_nce, cut.nce_idt, cut.flip_equivariance, cut.gan_mode, cut.pool_size,
            cut.nce_patches, cut.nce_temperature, cut.n_epochs, cut.n_epochs_decay,
            cut.init_type) == (1.0, True, False, "lsgan", 0, 256, 0.07, 200, 200, "xavier")
    assert (fast.lambda_nce, fast.nce_idt, fast.flip_equivariance, fast.n_epochs,
            fast.n_epochs_decay) == (10.0, False, True, 150, 50)
    assert TrainConfig().n_epochs == 100 and TrainConfig().pool_size == 50
    with pytest.raises(CganError, match="needs a ResNet generator"):
        TrainConfig(model="cut", netG="unet_256").validate()
    with pytest.raises(CganError, match="give the folders the other way round"):
        TrainConfig(model="cut", direction="BtoA").validate()
    assert CUT(small(), CPU, Amp(CPU), SpeedPlan.plain()).loss_names == [
        "D_real", "D_fake", "G_GAN", "NCE", "NCE_Y"]
    assert FastCUT(small(model="fastcut"), CPU, Amp(CPU), SpeedPlan.plain()).loss_names == [
        "D_real", "D_fake", "G_GAN", "NCE"]


# -- flip equivariance ---------------------------------------------------------------------------
def test_flipped_steps_compare_features_flipped_back() -> None:
    """A flipped step runs G on the flipped input and flips its features back before PatchNCE
    against the unflipped input."""
    cfg = small(model="fastcut")
    family = FastCUT(cfg, CPU, Amp(CPU), SpeedPlan.plain())
    g, proj = family.model.G, family.model.F
    work = GeneratorWithNCE(g, proj, cfg)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    torch.manual_seed(5)
    fake, nce, none = work(a, b, flipped=True)
    assert none is None and torch.allclose(fake, g(a.flip(3)))
    torch.manual_seed(5)
    keys, ids = proj(g.encode(a), cfg.nce_patches)
    queries, _ = proj([f.flip(3) for f in g.encode(fake)], cfg.nce_patches, ids)
    by_hand = sum(patch_nce_loss(q, k, 2, cfg.nce_temperature)
                  for q, k in zip(queries, keys, strict=True)) * cfg.lambda_nce / 5
    torch.testing.assert_close(nce, by_hand)
    # not flipping them back is another loss (the test can fail)
    torch.manual_seed(5)
    unflipped = GeneratorWithNCE(g, proj, cfg).nce(a, fake, flipped=False)
    assert not torch.allclose(unflipped, nce)


def test_fastcut_flips_half_of_its_steps_and_cut_none(monkeypatch) -> None:
    seen: dict[str, list[bool]] = {"fastcut": [], "cut": []}
    original = GeneratorWithNCE.forward

    def spy(self, real_a, real_b, flipped):
        seen[self.cfg.model].append(flipped)
        return original(self, real_a, real_b, flipped)

    monkeypatch.setattr(GeneratorWithNCE, "forward", spy)
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    torch.manual_seed(0)
    for model, cls in (("fastcut", FastCUT), ("cut", CUT)):
        family = cls(small(model=model, ngf=2, ndf=2, nce_patches=8), CPU, Amp(CPU),
                     SpeedPlan.plain())
        for _ in range(20):
            family.step(a, b)
    assert 4 <= sum(seen["fastcut"]) <= 16 and not any(seen["cut"])


# -- runs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["cut", "fastcut"])
def test_resume_is_bit_identical_projector_included(model, tiny_data, tmp_path) -> None:
    fixed = dict(model=model, lr_fit_steps=False, ema=0.9, nce_patches=32)
    nets, _ = straight_and_resumed(
        lambda runs, steps: tiny_config(tiny_data, runs, max_steps=steps, **fixed), tmp_path)
    assert set(nets[0]) == {"G", "D", "F", "G_ema"}
    for name, sd in nets[0].items():
        for key, value in sd.items():
            assert torch.equal(value, nets[1][name][key]), (name, key)


def test_speed_levers_give_the_plain_step() -> None:
    cfg = small(nce_patches=16)
    results = []
    for plan in (SpeedPlan.plain(), SpeedPlan("off", channels_last=True, fused_adam=True,
                                              fuse_calls=True)):
        torch.manual_seed(0)
        from cyclegan_cli.training.trainer import Trainer

        t = Trainer(cfg, CPU, "fp32", speed=plan)
        a, b = (torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(i)) * 2 - 1
                for i in (1, 2))
        results.append(torch.stack([t.train_step(a, b) for _ in range(3)]))
    torch.testing.assert_close(results[0], results[1], rtol=5e-3, atol=2e-3)


@pytest.fixture(scope="module")
def learnt(tmp_path_factory):
    """A tiny CUT run on the demo data (golden-hour grade, unpaired) and its export (the
    best checkpoint by held-out PSNR: on 32 crops the adversarial loss soon overfits)."""
    from cyclegan_cli.data.demo import make_demo_dataset

    tmp = tmp_path_factory.mktemp("cut")
    data = make_demo_dataset(tmp / "data", size=32, n_train=32, n_test=4)
    cfg = tiny_config(data, tmp / "runs", model="cut", max_steps=100, batch_size=4,
                      n_epochs=10, n_epochs_decay=3, log_every=50, save_every=100,
                      netD="n_layers", n_layers_D=2, nce_patches=64, eval_every=50,
                      eval_a=str(data / "testA"), eval_target=str(data / "testB_true"),
                      name="graded")
    result = train(cfg, console=quiet(), quiet=True)
    (exported,) = export_run(result.run_dir, out_dir=tmp / "models")
    return data, result.run_dir, exported.path


def test_a_tiny_run_beats_the_identity(learnt) -> None:
    data, _, model = learnt
    translator = load_model(model)
    gains = [psnr(translator.translate_array(load_rgb(f)), load_rgb(data / "testB_true" /
                                                                    f.name))
             - psnr(load_rgb(f), load_rgb(data / "testB_true" / f.name))
             for f in list_images(data / "testA")]
    assert np.mean(gains) > 0.5, gains


def test_one_direction_export_and_use(learnt, tmp_path) -> None:
    data, run_dir, model = learnt
    info = load_model(model).info
    assert (info.direction, info.family, info.directions, info.one_way) == (
        "AtoB", "cut", "AtoB", True)
    refused = CliRunner().invoke(app, ["translate", "-m", str(model), "--direction", "BtoA",
                                       str(data / "testA"), "-o", str(tmp_path / "no")])
    assert refused.exit_code == 1 and "leave out --direction" in refused.output
    ok = CliRunner().invoke(app, ["translate", "-m", str(run_dir), "--backend", "torch",
                                  str(data / "testA"), "-o", str(tmp_path / "out"), "-q"])
    assert ok.exit_code == 0, ok.output
    src = load_rgb(list_images(data / "testA")[0])
    torch_out = load_rgb(tmp_path / "out" / list_images(data / "testA")[0].name)
    assert psnr(load_model(model).translate_array(src), torch_out) > 40  # ONNX = torch


def test_bf16_autocast_trains() -> None:
    from cyclegan_cli.training.trainer import Trainer

    t = Trainer(small(model="fastcut", nce_patches=16), CPU, "bf16", speed=SpeedPlan.plain())
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.isfinite(torch.stack([t.train_step(a, b) for _ in range(2)])).all()


@pytest.mark.slow
def test_compiled_step_equals_eager() -> None:
    """torch.compile of G with its PatchNCE work, and of D (inductor; about a minute)."""
    from cyclegan_cli.training.trainer import Trainer

    cfg = small(nce_patches=16)
    results, trainers = [], []
    for plan in (SpeedPlan("default", False, False, True), SpeedPlan.plain()):
        torch.manual_seed(0)
        trainers.append(Trainer(cfg, CPU, "fp32", speed=plan))
        a, b = (torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(i)) * 2 - 1
                for i in (1, 2))
        results.append(torch.stack([trainers[-1].train_step(a, b) for _ in range(3)]))
    assert trainers[0].speed.compile == "default"  # compiled, not fallen back to eager
    torch.testing.assert_close(results[0], results[1], rtol=5e-3, atol=2e-3)


def test_images_of_two_sizes_at_batch_one() -> None:
    """--preprocess none keeps whole images: A and B may differ in size (CUT's identity NCE
    then calls G twice instead of once)."""
    family = CUT(small(nce_patches=16), CPU, Amp(CPU), SpeedPlan.plain())
    a, b = torch.rand(1, 3, 32, 48) * 2 - 1, torch.rand(1, 3, 40, 32) * 2 - 1
    losses = family.step(a, b)
    assert torch.isfinite(losses).all() and len(losses) == 5


def test_a_saved_config_keeps_its_values_for_the_same_model() -> None:
    from cyclegan_cli.config import derive_recipe_fields

    saved = TrainConfig(model="cut", n_epochs=7, n_epochs_decay=3, init_type="normal").to_dict()
    same = derive_recipe_fields(saved, {"model"}, saved=True, model="cut")
    assert (same["n_epochs"], same["n_epochs_decay"], same["init_type"]) == (7, 3, "normal")
    other = TrainConfig.from_dict(derive_recipe_fields(saved, {"model"}, saved=True,
                                                       model="fastcut") | {"model": "fastcut"})
    assert (other.n_epochs, other.n_epochs_decay, other.init_type) == (150, 50, "xavier")
