"""Tests for cyclegan_cli.config: JSON round trip, validation, CLI field coverage."""

from __future__ import annotations

import json
import typing
from dataclasses import fields

import pytest

from cyclegan_cli.config import FAMILY_FIELDS, RECIPE_FIELDS, TrainConfig, cli_fields
from cyclegan_cli.errors import CganError
from tests.conftest import needs_torch

pytestmark = pytest.mark.torchfree  # runs in an install without torch


def test_defaults_follow_the_reference():
    cfg = TrainConfig()
    assert (cfg.load_size, cfg.crop_size) == (286, 256)
    assert (cfg.lr, cfg.beta1, cfg.beta2) == (2e-4, 0.5, 0.999)
    assert (cfg.n_epochs, cfg.n_epochs_decay) == (100, 100)
    reference = TrainConfig(recipe="reference")  # the recipe's fields
    assert (reference.lambda_A, reference.lambda_B, reference.lambda_identity) == (10, 10, 0.5)
    assert cfg.pool_size == 50
    assert cfg.gan_mode == "lsgan"
    assert cfg.total_epochs == 200
    assert cfg.validate() is cfg


def test_json_round_trip_defaults(tmp_path):
    cfg = TrainConfig()
    path = tmp_path / "config.json"
    path.write_text(cfg.to_json(), encoding="utf-8")
    assert TrainConfig.load(path) == cfg


def test_json_round_trip_non_defaults(tmp_path):
    cfg = TrainConfig(
        dir_a="/data/a", dir_b="/data/b", preprocess="scale_width", load_size=128,
        crop_size=64, flip=False, netG="unet_128", netD="n_layers", n_layers_D=4,
        gan_mode="wgangp", lambda_identity=0.0, label_smoothing=0.1, lr=1e-3,
        lr_policy="cosine", n_epochs=3, n_epochs_decay=7, name="horse2zebra", seed=42,
        gp_one_sided=True, device="cpu", precision="fp32",
    )
    path = tmp_path / "sub" / "config.json"
    path.parent.mkdir()
    path.write_text(cfg.to_json(), encoding="utf-8")
    loaded = TrainConfig.load(path)
    assert loaded == cfg
    for f in fields(TrainConfig):
        assert getattr(loaded, f.name) == getattr(cfg, f.name), f.name
    assert isinstance(loaded.lr, float) and isinstance(loaded.seed, int)


def test_to_json_is_plain_json_with_every_field():
    data = json.loads(TrainConfig(seed=3).to_json())
    assert set(data) == {f.name for f in fields(TrainConfig)}
    assert data["seed"] == 3
    assert data["dir_a"] is None


def test_missing_keys_take_defaults(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"lr": 0.5, "name": "x"}), encoding="utf-8")
    cfg = TrainConfig.load(path)
    assert cfg.lr == 0.5 and cfg.name == "x"
    assert cfg.crop_size == 256


def test_unknown_keys_rejected(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"lr": 0.5, "learning_rate": 1.0}), encoding="utf-8")
    with pytest.raises(CganError, match="learning_rate"):
        TrainConfig.load(path)


def test_unreadable_config_is_a_cgan_error(tmp_path):
    with pytest.raises(CganError, match="cannot read config"):
        TrainConfig.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(CganError, match="cannot read config"):
        TrainConfig.load(bad)


def test_run_dir(tmp_path):
    cfg = TrainConfig(name="exp", runs_dir=str(tmp_path))
    assert cfg.run_dir == tmp_path / "exp"
    with pytest.raises(CganError):
        _ = TrainConfig().run_dir


@pytest.mark.parametrize("changes,match", [
    ({"lr": -1e-4}, "--lr"),
    ({"lr": 0.0}, "--lr"),
    ({"load_size": 0}, "--load-size"),
    ({"crop_size": -5}, "--crop-size"),
    ({"load_size": 200, "crop_size": 256}, "must be >= --crop-size"),
    ({"batch_size": 0}, "--batch-size"),
    ({"ngf": 0}, "--ngf"),
    ({"ndf": 0}, "--ndf"),
    ({"n_layers_D": 0}, "--n-layers-d"),
    ({"lambda_A": -1.0}, "loss weights"),
    ({"lambda_B": -0.1}, "loss weights"),
    ({"lambda_identity": -0.5}, "loss weights"),
    ({"pool_size": -1}, "--pool-size"),
    ({"label_smoothing": 1.0}, "--label-smoothing"),
    ({"label_smoothing": -0.1}, "--label-smoothing"),
    ({"n_epochs": -1}, "epoch counts"),
    ({"n_epochs_decay": -3}, "epoch counts"),
    ({"n_epochs": 0, "n_epochs_decay": 0}, "nothing to train"),
    ({"max_steps": -1}, "--max-steps"),
    ({"n_epochs": 0, "n_epochs_decay": 0, "max_steps": 100}, "nothing to train"),
    ({"save_every": 0}, "--save-every"),
    ({"log_every": 0}, "--log-every"),
    ({"sample_every": -1}, "--sample-every"),
    ({"netG": "unet_128", "residual": True}, "--residual needs a ResNet generator"),
])
def test_validate_rejects_bad_values(changes, match):
    with pytest.raises(CganError, match=match):
        TrainConfig(**changes).validate()


@pytest.mark.parametrize("changes", [
    {"preprocess": "crop", "load_size": 200, "crop_size": 256},  # only resize_and_crop checks it
    {"preprocess": "none", "load_size": 10, "crop_size": 256},
    {"load_size": 256, "crop_size": 256},
    {"n_epochs": 0, "n_epochs_decay": 1, "max_steps": 100},
    {"label_smoothing": 0.0},
    {"label_smoothing": 0.99},
    {"pool_size": 0, "lambda_identity": 0.0},
    {"netG": "resnet_6blocks", "residual": True},
])
def test_validate_accepts_edge_values(changes):
    cfg = TrainConfig(**changes)
    assert cfg.validate() is cfg


def test_cli_fields_cover_every_field_except_cli_false():
    names = [name for name, *_ in cli_fields()]
    hidden = {f.name for f in fields(TrainConfig) if f.metadata.get("cli", True) is False}
    assert hidden == {"dir_a", "dir_b"}
    assert names == [f.name for f in fields(TrainConfig) if f.name not in hidden]
    assert len(names) == len(set(names))


def test_cli_fields_carry_defaults_types_and_help():
    defaults = TrainConfig()
    hints = typing.get_type_hints(TrainConfig)
    for name, hint, default, meta in cli_fields():
        if name in RECIPE_FIELDS + FAMILY_FIELDS:  # None: from --recipe / --model, filled in
            assert default is None and getattr(defaults, name) is not None, name
        else:
            assert default == getattr(defaults, name), name
        assert hint == hints[name], name
        assert isinstance(hint, type) or typing.get_origin(hint) is not None, name
        assert meta["help"] and meta["panel"], name
    by_name = {name: (hint, meta) for name, hint, _, meta in cli_fields()}
    gan_mode = typing.get_args(by_name["gan_mode"][0])[0]  # (Optional: from --model)
    assert typing.get_args(gan_mode) == ("lsgan", "vanilla", "minimax", "wgangp", "hinge")
    assert by_name["netG"][1]["flag"] == "net-g"
    assert by_name["lr"][0] is float


@needs_torch
def test_literal_choices_match_the_implementations():
    from cyclegan_cli.data.transforms import PREPROCESS_MODES
    from cyclegan_cli.losses import GAN_MODES
    from cyclegan_cli.training.schedule import LR_POLICIES

    hints = typing.get_type_hints(TrainConfig)
    assert typing.get_args(typing.get_args(hints["gan_mode"])[0]) == GAN_MODES  # (Optional)
    assert typing.get_args(hints["lr_policy"]) == LR_POLICIES
    assert typing.get_args(hints["preprocess"]) == PREPROCESS_MODES


# -- a field's facts live in the config ----------------------------------------------------------
def test_flag_names_come_from_the_field() -> None:
    from cyclegan_cli.config import flag_name

    assert flag_name("netG") == "net-g" and flag_name("serial_batches") == "serial"
    assert flag_name("lambda_identity") == "lambda-identity"


def test_resumable_fields_are_marked_on_the_fields() -> None:
    from cyclegan_cli.config import is_resumable, resumable_fields

    assert set(resumable_fields()) == {  # run length, intervals, device, speed: not the math
        "n_epochs", "n_epochs_decay", "max_steps", "save_every", "sample_every", "log_every",
        "num_workers", "device", "precision", "cache", "eval_every", "eval_a", "eval_target",
        "eval_max", "compile", "channels_last", "fused_adam", "fuse_calls", "threads",
        "tensorboard"}
    assert not is_resumable("netG") and not is_resumable("model")


def test_a_fixed_option_changed_on_resume_is_named_by_its_flag() -> None:
    saved = TrainConfig(name="r")
    with pytest.raises(CganError, match=r"^--net-g, --serial cannot change when resuming; only "
                       r"--cache, .*--max-steps"):
        saved.resumed_with({"netG": "unet_256", "serial_batches": True, "max_steps": 9})
    assert saved.resumed_with({"netG": saved.netG, "max_steps": 9}).max_steps == 9


@pytest.mark.parametrize(("changes", "message"), [
    ({"netG": "resnet_8blocks"}, "--net-g must be one of resnet_9blocks, resnet_6blocks, "
                                 "unet_256, unet_128, unet_64, not 'resnet_8blocks'"),
    ({"lr": "0.0002"}, "--lr must be a number, not '0.0002'"),
    ({"batch_size": 2.5}, "--batch-size must be a whole number, not 2.5"),
    ({"flip": "yes"}, "--flip must be true or false, not 'yes'"),
    ({"batch_size": True}, "--batch-size must be a whole number, not True"),
    ({"model": "unit"}, "--model must be one of cyclegan, pix2pix, cut, fastcut, not 'unit'"),
    ({"runs_dir": None}, "--runs-dir needs a value"),
])
def test_validate_checks_types_and_choices(changes, message) -> None:
    with pytest.raises(CganError) as err:
        TrainConfig(**changes).validate()
    assert str(err.value) == message


def test_a_hand_edited_config_file_is_one_line(tmp_path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**TrainConfig().to_dict(), "gan_mode": "lsgann"}))
    with pytest.raises(CganError, match=r"config.json: --gan-mode must be one of lsgan, "):
        TrainConfig.load(path)
    path.write_text("[1, 2]")
    with pytest.raises(CganError, match="not a configuration"):
        TrainConfig.load(path)
    old = TrainConfig().to_dict()
    del old["model"]  # written before model families: loads as cyclegan
    path.write_text(json.dumps(old))
    assert TrainConfig.load(path).model == "cyclegan"
