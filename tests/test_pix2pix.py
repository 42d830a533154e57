"""pix2pix: the family's defaults, its conditional discriminator and losses (against a hand
computation), resume, the three paired layouts through `cgan train`, one-direction export and
use (translate, eval, video frames, the GIMP plug-in's list), and a tiny run that learns."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

from cyclegan_cli.cli import app
from cyclegan_cli.config import TrainConfig, derive_recipe_fields
from cyclegan_cli.data.images import list_images, load_rgb
from cyclegan_cli.data.tasks import TASKS, make_task_dataset
from cyclegan_cli.errors import CganError, ExportError, ModelError
from cyclegan_cli.evaluation.metrics import psnr
from cyclegan_cli.export import export_run
from cyclegan_cli.inference import load_model
from cyclegan_cli.inference.plan import open_translator
from cyclegan_cli.rundir import RunDir, load_checkpoint
from cyclegan_cli.shipped import plugins_dir
from cyclegan_cli.training.amp import Amp
from cyclegan_cli.training.families import FAMILIES, Pix2Pix
from cyclegan_cli.training.loop import train
from cyclegan_cli.training.speed import SpeedPlan
from cyclegan_cli.training.trainer import Trainer
from tests.conftest import straight_and_resumed

CPU = torch.device("cpu")
SIDE = 64  # unet_64's size multiple


def quiet() -> Console:
    return Console(file=open(os.devnull, "w"))  # noqa: SIM115


def small(**changes) -> TrainConfig:
    values = dict(model="pix2pix", netG="unet_64", ngf=4, ndf=4, seed=0, load_size=SIDE,
                  crop_size=SIDE)
    return TrainConfig(**(values | changes))


def pair_batch(n: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    return tuple(torch.rand(n, 3, SIDE, SIDE, generator=gen) * 2 - 1 for _ in range(2))


@pytest.fixture(scope="module")
def paired_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 crops and their golden-hour grade under the same names (trainA/trainB), 4 held-out
    pairs (testA/testB_true)."""
    return make_task_dataset(tmp_path_factory.mktemp("paired"), "golden_hour", size=SIDE,
                             n_train=16, n_test=4, paired=True)


def run_config(data: Path, runs: Path, **changes) -> TrainConfig:
    values = dict(model="pix2pix", dir_a=str(data / "trainA"), dir_b=str(data / "trainB"),
                  netG="unet_64", ngf=8, ndf=8, load_size=SIDE + 8, crop_size=SIDE,
                  n_epochs=1, n_epochs_decay=1, runs_dir=str(runs), name="p2p", log_every=1,
                  save_every=1, device="cpu", seed=5, num_workers=0)
    return TrainConfig(**(values | changes))


# -- the family ----------------------------------------------------------------------------------
def test_defaults_are_the_reference_pix2pix() -> None:
    p2p = TrainConfig(model="pix2pix")
    assert (p2p.netG, p2p.norm, p2p.dropout, p2p.gan_mode, p2p.pool_size, p2p.lambda_L1,
            p2p.batch_size, p2p.lr, p2p.beta1, p2p.lr_policy, p2p.netD) == (
        "unet_256", "batch", True, "vanilla", 0, 100.0, 1, 2e-4, 0.5, "linear", "basic")
    cyc = TrainConfig()
    assert (cyc.netG, cyc.norm, cyc.dropout, cyc.gan_mode, cyc.pool_size) == (
        "resnet_9blocks", "instance", False, "lsgan", 50)
    assert TrainConfig(model="pix2pix", norm="instance", gan_mode="lsgan").norm == "instance"
    # the command line: --model pix2pix over the defaults, a saved config keeps its own
    base = TrainConfig().to_dict()
    made = TrainConfig.from_dict(derive_recipe_fields(base, {"model"}) | {"model": "pix2pix"})
    assert (made.netG, made.norm, made.pool_size) == ("unet_256", "batch", 0)
    saved = derive_recipe_fields(made.to_dict(), set(), saved=True)
    assert TrainConfig.from_dict(saved).norm == "batch"
    assert FAMILIES["pix2pix"] is Pix2Pix


def test_help_says_which_defaults_differ() -> None:
    text = " ".join(CliRunner().invoke(app, ["train", "--help"],
                                       env={"COLUMNS": "400"}).output.replace("│", "").split())
    assert "resnet_9blocks for cyclegan, unet_256 for pix2pix" in text
    assert "pix2pix: weight of the L1 loss" in text and "CycleGAN: weight of the cycle" in text


@pytest.mark.parametrize("changes, message", [
    ({"model": "cyclegan", "pairs": "x.csv"}, "--pairs is for paired training"),
    ({"model": "cyclegan", "direction": "BtoA"}, "--direction is for paired training"),
    ({"eval_every": 5}, "--eval-every needs --eval-a"),
    ({"eval_every": 5, "eval_a": "held_out/"}, "--eval-a needs --eval-target for a paired"),
    ({"lambda_L1": -1.0}, "loss weights must be >= 0"),
])
def test_options_that_do_not_apply_are_refused(changes, message) -> None:
    with pytest.raises(CganError, match=message):
        small(**changes).validate()


def test_discriminator_sees_the_input_with_each_output() -> None:
    """D is conditional: 6 input channels, fed (input, target) and (input, G(input))."""
    family = Pix2Pix(small(), CPU, Amp(CPU), SpeedPlan.plain())
    assert family.model.D.model[0].in_channels == 6
    seen, made = [], []
    family.model.D.register_forward_hook(lambda m, i, o: seen.append(i[0].detach().clone()))
    family.model.G.register_forward_hook(lambda m, i, o: made.append(o.detach().clone()))
    a, b = pair_batch()
    family.step(a, b)
    assert len(made) == 1 and len(seen) == 3  # D's update (fake, real), then G's update
    fake_seen, real_seen, for_g = seen
    assert torch.equal(real_seen, torch.cat([a, b], 1))
    assert torch.equal(fake_seen, torch.cat([a, made[0]], 1))
    assert torch.equal(for_g, fake_seen)


def test_losses_match_a_hand_computation() -> None:
    """Vanilla GAN: D's terms are BCE on its logits for (input, target) → 1 and (input,
    G(input)) → 0; G's loss is BCE of the updated D on (input, G(input)) → 1, times
    lambda_gan, plus lambda_L1 × mean |G(input) − target|."""
    cfg = small(dropout=False, norm="instance", lambda_gan=0.7, lambda_L1=60.0)
    family = Pix2Pix(cfg, CPU, Amp(CPU), SpeedPlan.plain())
    g0 = {k: v.clone() for k, v in family.model.G.state_dict().items()}
    d0 = {k: v.clone() for k, v in family.model.D.state_dict().items()}
    a, b = pair_batch()
    losses = family.step(a, b)
    assert family.loss_names == ["D_real", "D_fake", "G_GAN", "L1"]
    d1 = {k: v.clone() for k, v in family.model.D.state_dict().items()}
    fresh = Pix2Pix(cfg, CPU, Amp(CPU), SpeedPlan.plain())
    g, d = fresh.model.G, fresh.model.D
    g.load_state_dict(g0)
    d.load_state_dict(d0)
    with torch.no_grad():
        fake = g(a)
        real_logits, fake_logits = d(torch.cat([a, b], 1)), d(torch.cat([a, fake], 1))
        # BCE with logits by hand: target 1 -> log(1 + e^-x), target 0 -> log(1 + e^x)
        d_real = torch.log1p(torch.exp(-real_logits)).mean()
        d_fake = torch.log1p(torch.exp(fake_logits)).mean()
        d.load_state_dict(d1)  # G's update is judged by the updated D
        g_gan = 0.7 * torch.log1p(torch.exp(-d(torch.cat([a, fake], 1)))).mean()
        g_l1 = 60.0 * (fake - b).abs().mean()
    expected = torch.stack([d_real, d_fake, g_gan, g_l1])
    torch.testing.assert_close(losses, expected, rtol=1e-5, atol=1e-6)
    # and the update moved G along the gradient of that sum
    assert any(not torch.equal(v, g0[k]) for k, v in family.model.G.state_dict().items())


def test_lambda_gan_zero_is_l1_regression() -> None:
    """With no adversarial weight G's update is plain L1: D does not reach G at all."""
    cfg = small(dropout=False, norm="instance", lambda_gan=0.0)
    family = Pix2Pix(cfg, CPU, Amp(CPU), SpeedPlan.plain())
    reference = Pix2Pix(cfg, CPU, Amp(CPU), SpeedPlan.plain())
    reference.model.G.load_state_dict(family.model.G.state_dict())
    opt = torch.optim.Adam(reference.model.G.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    a, b = pair_batch()
    family.step(a, b)
    loss = cfg.lambda_L1 * F.l1_loss(reference.model.G(a), b)
    opt.zero_grad()
    loss.backward()
    opt.step()
    for (name, mine), theirs in zip(family.model.G.state_dict().items(),
                                    reference.model.G.state_dict().values(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-6, msg=name)


@pytest.mark.parametrize("changes", [{"gan_mode": "lsgan"}, {"gan_mode": "wgangp"},
                                     {"gan_mode": "hinge", "pool_size": 2},
                                     {"gan_mode": "minimax", "norm": "instance"},
                                     {"netG": "resnet_6blocks", "ema": 0.99}])
def test_cyclegan_options_apply(changes) -> None:
    t = Trainer(small(**changes), CPU, "fp32", speed=SpeedPlan.plain())
    a, b = pair_batch(2)
    losses = torch.stack([t.train_step(a, b) for _ in range(2)])
    assert torch.isfinite(losses).all() and losses.shape[1] == len(t.loss_names)
    assert ("gp" in t.loss_names) == (changes.get("gan_mode") == "wgangp")


def test_speed_levers_give_the_plain_step() -> None:
    """Per-sample norms (instance): fused D calls and channels-last give the plain losses."""
    cfg = small(norm="instance", dropout=False)
    results = []
    for plan in (SpeedPlan.plain(), SpeedPlan("off", channels_last=True, fused_adam=True,
                                              fuse_calls=True)):
        torch.manual_seed(0)
        t = Trainer(cfg, CPU, "fp32", speed=plan)
        a, b = pair_batch(2)
        results.append(torch.stack([t.train_step(a, b) for _ in range(3)]))
    torch.testing.assert_close(results[0], results[1], rtol=5e-3, atol=2e-3)


def test_bf16_autocast_trains() -> None:
    t = Trainer(small(), CPU, "bf16", speed=SpeedPlan.plain())
    a, b = pair_batch()
    assert torch.isfinite(torch.stack([t.train_step(a, b) for _ in range(2)])).all()


# -- runs ----------------------------------------------------------------------------------------
def test_resume_is_bit_identical(paired_data, tmp_path) -> None:
    """4 steps straight, and 2 steps + resume to 4 (dropout, batch-norm statistics, EMA,
    optimisers, data order), give the same weights."""
    fixed = dict(ema=0.9, lr_fit_steps=False,  # (a schedule fitted into --max-steps changes)
                 direction="BtoA", pool_size=2)
    nets, resumed = straight_and_resumed(
        lambda runs, steps: run_config(paired_data, runs, max_steps=steps, **fixed), tmp_path)
    assert set(nets[0]) == {"G", "D", "G_ema"}
    assert resumed["exports"] == {"BtoA": "G_ema"}
    for name, sd in nets[0].items():
        for key, value in sd.items():
            assert torch.equal(value, nets[1][name][key]), (name, key)


def _ab_root(data: Path, root: Path) -> Path:
    """The reference side-by-side layout of ``data``'s pairs: train/ and val/."""
    for split, (a_dir, b_dir) in (("train", ("trainA", "trainB")),
                                  ("val", ("testA", "testB_true"))):
        (root / split).mkdir(parents=True)
        for f in list_images(data / a_dir):
            ab = np.concatenate([load_rgb(f), load_rgb(data / b_dir / f.name)], axis=1)
            Image.fromarray(ab).save(root / split / f.name)
    return root


def test_every_layout_trains_from_the_command_line(paired_data, tmp_path) -> None:
    """Two folders, side-by-side images (with val/ scored by --eval-every) and a CSV; and
    --direction BtoA swaps input and target."""
    root = _ab_root(paired_data, tmp_path / "facades")
    csv = tmp_path / "day2night.csv"
    csv.write_text("A,B\n" + "".join(f"{paired_data}/trainA/{f.name},{paired_data}/trainB/"
                                     f"{f.name}\n" for f in list_images(paired_data / "trainA")))
    common = ["--model", "pix2pix", "--net-g", "unet_64", "--ngf", "4", "--ndf", "4",
              "--load-size", "64", "--crop-size", "64", "--max-steps", "2", "--num-workers",
              "0", "--runs-dir", str(tmp_path / "runs"), "--quiet", "--seed", "1"]
    runner = CliRunner()
    for source in ([str(paired_data / "trainA"), str(paired_data / "trainB")],
                   ["--dataroot", str(root), "--eval-every", "2"],
                   ["--pairs", str(csv), "--direction", "BtoA"]):
        result = runner.invoke(app, ["train", *source, *common])
        assert result.exit_code == 0, result.output
    runs = tmp_path / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["day2night", "facades", "trainA2trainB"]
    header = (runs / "facades" / "eval.csv").read_text().splitlines()
    assert len(header) == 2 and ",psnr," in header[1]  # val/ pairs, scored against B
    assert load_checkpoint(RunDir(runs / "day2night").latest)["exports"] == {"BtoA": "G_ema"}
    # a pair with different sizes: one line before any step
    # a new run from a saved config, on another source of pairs
    again = runner.invoke(app, ["train", "--config", str(runs / "trainA2trainB" / "config.json"),
                                "--pairs", str(csv), "--name", "again", "--max-steps", "1",
                                "--quiet"])
    assert again.exit_code == 0, again.output
    saved = TrainConfig.load(runs / "again" / "config.json")
    assert saved.pairs == str(csv) and saved.dir_a is None and saved.netG == "unet_64"
    # options pix2pix does not use are refused, not ignored
    unused = runner.invoke(app, ["train", str(paired_data / "trainA"),
                                 str(paired_data / "trainB"), *common, "--lambda-a", "5",
                                 "--serial"])
    assert unused.exit_code == 1
    assert "--lambda-a, --serial: not used by --model pix2pix" in unused.output
    bad = tmp_path / "bad.csv"
    big = tmp_path / "big.png"
    Image.new("RGB", (SIDE * 2, SIDE)).save(big)
    bad.write_text(f"{paired_data}/trainA/0000.png,{big}\n")
    result = runner.invoke(app, ["train", "--pairs", str(bad), *common])
    assert result.exit_code == 1 and "pair(s) of different sizes" in result.output
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def learnt(paired_data, tmp_path_factory) -> tuple[Path, Path]:
    """A tiny pix2pix run (the reference U-Net, batch norm, dropout; 400 steps at a higher
    rate than the reference's, for a CPU test) and its exported model."""
    tmp = tmp_path_factory.mktemp("learnt")
    cfg = run_config(paired_data, tmp / "runs", ngf=16, lr=1e-3, max_steps=400, n_epochs=20,
                     n_epochs_decay=5, log_every=50, save_every=100, eval_every=100,
                     eval_a=str(paired_data / "testA"),
                     eval_target=str(paired_data / "testB_true"), name="graded")
    result = train(cfg, console=quiet(), quiet=True)
    (exported,) = export_run(result.run_dir, out_dir=tmp / "models")
    return result.run_dir, exported.path


def test_a_tiny_run_beats_the_identity(learnt, paired_data) -> None:
    run_dir, model = learnt
    translator = load_model(model)
    gains = []
    for f in list_images(paired_data / "testA"):
        src, truth = load_rgb(f), load_rgb(paired_data / "testB_true" / f.name)
        gains.append(psnr(translator.translate_array(src), truth) - psnr(src, truth))
    assert np.mean(gains) > 1.0 and min(gains) > -0.5, gains  # (here: +2.4 dB, all above)
    assert RunDir(run_dir).best.is_file()  # --eval-every found a checkpoint above the input


def test_one_direction_export_and_use(learnt, paired_data, tmp_path, monkeypatch) -> None:
    run_dir, model = learnt
    info = load_model(model).info
    assert (info.direction, info.family, info.directions, info.one_way) == (
        "AtoB", "pix2pix", "AtoB", True)
    assert info.config["model"] == "pix2pix" and info.config["lambda_L1"] == 100.0
    assert [p.name for p in model.parent.iterdir()] == ["graded-AtoB.onnx"]
    with pytest.raises(ExportError, match="no BtoA generator"):
        export_run(run_dir, direction="BtoA", out_dir=tmp_path)
    monkeypatch.setenv("CGAN_MODELS", str(model.parent))
    runner = CliRunner()
    photos = paired_data / "testA"
    ok = runner.invoke(app, ["translate", "-m", "graded", str(photos), "-o",
                             str(tmp_path / "out"), "-q"])
    assert ok.exit_code == 0, ok.output
    assert len(list_images(tmp_path / "out")) == 4
    for how in (["-m", "graded"], ["-m", str(model)], ["-m", str(run_dir), "--backend",
                                                       "torch"]):
        refused = runner.invoke(app, ["translate", *how, "--direction", "BtoA", str(photos),
                                      "-o", str(tmp_path / "no")], env={"COLUMNS": "300"})
        assert refused.exit_code == 1, (how, refused.output)
        assert "AtoB only" in refused.output and "leave out --direction" in refused.output
        assert "Traceback" not in refused.output and not (tmp_path / "no").exists()
    # the run folder itself, through its checkpoint, needs no --direction either
    torch_side = open_translator(run_dir, None, "torch")
    assert torch_side.info.direction == "AtoB" and torch_side.info.one_way
    src = load_rgb(list_images(photos)[0])
    assert psnr(torch_side.translate_array(src), load_model(model).translate_array(src)) > 40
    # cgan eval scores it against the ground truth without --direction's cycle
    for how in ("graded", str(run_dir)):  # a name (its export) and the run's checkpoint
        scored = runner.invoke(app, ["eval", "-m", how, str(photos), "--target",
                                     str(paired_data / "testB_true"), "--json"])
        assert scored.exit_code == 0, scored.output
        assert '"direction": "AtoB"' in scored.output
    with pytest.raises(ModelError, match="unknown direction 'atob'"):
        open_translator("graded", "atob")


def test_videos_translate_in_the_one_direction(learnt, paired_data, tmp_path) -> None:
    ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="video needs imageio-ffmpeg")
    _, model = learnt
    frames = [load_rgb(f) for f in list_images(paired_data / "testA")] * 2
    clip = tmp_path / "clip.mp4"
    writer = ffmpeg.write_frames(str(clip), (SIDE, SIDE), fps=8, macro_block_size=1)
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    result = CliRunner().invoke(app, ["translate", "-m", str(model), str(clip), "-o",
                                      str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    out = list(ffmpeg.read_frames(str(tmp_path / "out" / "clip.mp4")))
    assert len(out) - 1 == len(frames)  # (the first item is the stream's metadata)


def test_the_gimp_plugin_lists_the_one_direction(learnt) -> None:
    _, model = learnt
    spec = importlib.util.spec_from_file_location(
        "cyclegan_gimp_plugin_p2p", plugins_dir() / "gimp" / "cyclegan" / "cyclegan.py")
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    from cyclegan_cli import gimp_install

    settings = {**gimp_install.plugin_settings(), "models_dirs": [str(model.parent)]}
    listed = plugin.installed_models(settings)
    assert [(m.nick, m.direction) for m in listed] == [("graded-AtoB", "AtoB")]
    assert "→" in listed[0].label


def test_samples_writes_paired_training_data(tmp_path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["samples", "--pairs", "soft_focus", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    assert result.output.split() == [str(tmp_path / "p" / n) for n in
                                     ("trainA", "trainB", "testA", "testB_true")]
    a, b = (sorted(p.name for p in (tmp_path / "p" / n).iterdir()) for n in ("trainA", "trainB"))
    assert a == b and len(a) == 400
    bad = runner.invoke(app, ["samples", "--pairs", "sepia", str(tmp_path / "q")])
    assert bad.exit_code == 1 and "unknown task 'sepia'; choose from golden_hour" in bad.output


def test_samples_help_lists_every_task() -> None:
    text = " ".join(CliRunner().invoke(app, ["samples", "--help"],
                                       env={"COLUMNS": "400"}).output.replace("│", "").split())
    assert all(name in text for name in TASKS), text


def test_a_model_without_the_asked_direction(tmp_path, learnt) -> None:
    """A one-direction file is used in its own direction and refuses the other; a
    two-direction model with one file installed says to export or pull the other."""
    import onnx

    from cyclegan_cli.inference.resolve import resolve_model
    from cyclegan_cli.shipped import weights_dir

    _, one_way = learnt
    model = onnx.load(str(one_way))
    for entry in model.metadata_props:
        if entry.key in ("cyclegan_cli.direction", "cyclegan_cli.directions"):
            entry.value = "BtoA"
    onnx.save(model, str(tmp_path / "sharpen-BtoA.onnx"))
    (tmp_path / "seasons-BtoA.onnx").write_bytes(
        (weights_dir() / "golden_hour-BtoA.onnx").read_bytes())  # (both directions trained)
    assert resolve_model("sharpen", None, tmp_path) == (tmp_path / "sharpen-BtoA.onnx", "onnx")
    with pytest.raises(CganError, match=r"model sharpen translates BtoA only \(sharpen-BtoA.onnx; "
                                        r"a one-direction model\): leave out --direction"):
        resolve_model("sharpen", "AtoB", tmp_path)
    for direction in (None, "AtoB"):
        with pytest.raises(CganError, match=r"model seasons has no AtoB file \(seasons-AtoB.onnx"
                                            r"; found .*\): export that direction"):
            resolve_model("seasons", direction, tmp_path)
    assert resolve_model("seasons", "BtoA", tmp_path)[0].name == "seasons-BtoA.onnx"


@pytest.mark.slow
def test_compiled_step_equals_eager() -> None:
    """torch.compile of G and D (inductor; about 2 minutes on 2 CPU cores)."""
    cfg = small(norm="instance", dropout=False)
    results, trainers = [], []
    for plan in (SpeedPlan("default", False, False, True), SpeedPlan.plain()):
        torch.manual_seed(0)
        trainers.append(Trainer(cfg, CPU, "fp32", speed=plan))
        a, b = pair_batch(2)
        results.append(torch.stack([trainers[-1].train_step(a, b) for _ in range(3)]))
    assert trainers[0].speed.compile == "default"  # compiled, not fallen back to eager
    torch.testing.assert_close(results[0], results[1], rtol=5e-3, atol=2e-3)
