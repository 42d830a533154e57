"""--recipe: the fields it sets, what wins over it, and old runs that keep their math."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from cyclegan_cli.cli import app
from cyclegan_cli.config import RECIPE_FIELDS, RECIPES, TrainConfig, derive_recipe_fields
from tests.conftest import needs_torch

pytestmark = pytest.mark.torchfree


def _recipe(cfg: TrainConfig) -> dict:
    return {k: getattr(cfg, k) for k in RECIPE_FIELDS}


def test_standard_is_the_default_and_reference_is_the_reference_math() -> None:
    assert TrainConfig().recipe == "standard"
    assert _recipe(TrainConfig()) == RECIPES["standard"]
    assert RECIPES["standard"] == {"residual": True, "lambda_A": 20.0, "lambda_B": 20.0,
                                   "lambda_identity": 0.15, "colour_branch": True,
                                   "ema": 0.999, "upsample": "resize", "d_augment": False}
    reference = TrainConfig(recipe="reference")
    assert _recipe(reference) == {"residual": False, "lambda_A": 10.0, "lambda_B": 10.0,
                                  "lambda_identity": 0.5, "colour_branch": False, "ema": 0.0,
                                  "upsample": "transpose", "d_augment": False}
    assert TrainConfig(lambda_A=5.0).lambda_A == 5.0 and TrainConfig(lambda_A=5.0).lambda_B == 20
    assert TrainConfig(recipe="reference", lambda_identity=0.0).lambda_identity == 0.0
    assert TrainConfig(ema=0.0).ema == 0.0 and TrainConfig(ema=0.0).residual is True


def test_a_unet_under_the_standard_recipe_keeps_what_it_can() -> None:
    cfg = TrainConfig(netG="unet_256").validate()  # residual needs a ResNet: not an error
    assert _recipe(cfg) == {"residual": False, "lambda_A": 10.0, "lambda_B": 10.0,
                            "lambda_identity": 0.5, "colour_branch": False,
                            "ema": 0.999, "upsample": "transpose",
                            "d_augment": RECIPES["standard"]["d_augment"]}


def test_an_old_run_without_a_recipe_keeps_the_reference_math() -> None:
    old = {"residual": False, "lambda_identity": 0.5}  # saved before the recipe existed
    cfg = TrainConfig.from_dict(old)
    assert cfg.recipe == "reference" and not cfg.colour_branch and cfg.ema == 0.0
    assert cfg.upsample == "transpose"
    cfg = TrainConfig.from_dict({"residual": True, "lambda_identity": 0.0})
    assert cfg.residual and not cfg.colour_branch and cfg.ema == 0.0
    assert (cfg.lambda_A, cfg.lambda_B) == (10.0, 10.0)


def test_derive_recipe_fields_follows_recipe_and_generator_unless_given() -> None:
    saved = TrainConfig(recipe="reference", lambda_identity=0.2).to_dict()
    assert derive_recipe_fields(saved, set(), saved=True) == saved  # a --config file
    again = derive_recipe_fields(saved, {"recipe"}, saved=True) | {"recipe": "standard"}
    assert _recipe(TrainConfig.from_dict(again)) == RECIPES["standard"]
    fresh = derive_recipe_fields(TrainConfig().to_dict(), {"netG", "ema"}) | {
        "netG": "unet_128", "ema": 0.5}
    cfg = TrainConfig.from_dict(fresh)
    assert (cfg.residual, cfg.lambda_A, cfg.lambda_identity, cfg.ema) == (False, 10.0, 0.5, 0.5)


@needs_torch  # the stubbed trainer lives in a module that imports torch
@pytest.mark.parametrize(("args", "expected"), [
    ([], RECIPES["standard"]),
    (["--recipe", "reference"], RECIPES["reference"]),
    (["--recipe", "reference", "--residual", "--lambda-identity", "0"],
     RECIPES["reference"] | {"residual": True, "lambda_identity": 0.0}),
    (["--no-colour-branch", "--ema", "0"], RECIPES["standard"] | {"colour_branch": False,
                                                                  "ema": 0.0}),
    (["--net-g", "unet_128"], {"residual": False, "lambda_A": 10.0, "lambda_B": 10.0,
                                "lambda_identity": 0.5, "colour_branch": False, "ema": 0.999,
                                "upsample": "transpose",
                                "d_augment": RECIPES["standard"]["d_augment"]}),
    (["--upsample", "transpose"], RECIPES["standard"] | {"upsample": "transpose"}),
])
def test_cgan_train_saves_the_recipe_values(tmp_path, monkeypatch, args, expected) -> None:
    """What ``cgan train`` resolves is what config.json holds (the trainer is stubbed out:
    this is about the options, not the training)."""
    seen = {}

    def fake_train(cfg, **_):
        seen["cfg"] = cfg
        raise SystemExit(0)

    monkeypatch.setattr("cyclegan_cli.training.loop.train", fake_train)
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    CliRunner().invoke(app, ["train", str(tmp_path / "A"), str(tmp_path / "B"), *args])
    assert _recipe(seen["cfg"]) == expected
    saved = tmp_path / "config.json"
    saved.write_text(seen["cfg"].to_json())
    CliRunner().invoke(app, ["train", str(tmp_path / "A"), str(tmp_path / "B"), "--config",
                             str(saved)])
    assert _recipe(seen["cfg"]) == expected  # a saved config keeps its values
    assert json.loads(saved.read_text())["recipe"] == seen["cfg"].recipe


def test_help_names_the_recipes() -> None:
    text = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output
    flat = " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())
    assert "--recipe" in flat and "standard" in flat and "reference" in flat
