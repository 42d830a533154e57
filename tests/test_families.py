"""The model-family interface: CycleGAN through it, and a second, one-directional family that
the loop, checkpoints, resume, samples, export and the torch backend serve through the
interface alone."""

from __future__ import annotations

import os
import typing
from typing import Any, Literal

import pytest
import torch
from rich.console import Console
from torch import Tensor, nn

from cyclegan_cli import config as config_module
from cyclegan_cli.config import TrainConfig, generator_options
from cyclegan_cli.errors import CheckpointError, ExportError
from cyclegan_cli.export import export_run
from cyclegan_cli.inference import load_model
from cyclegan_cli.models import build_generator
from cyclegan_cli.rundir import RunDir, load_checkpoint, load_generator
from cyclegan_cli.training import families as families_module
from cyclegan_cli.training.amp import Amp
from cyclegan_cli.training.families import FAMILIES, CycleGAN, Family
from cyclegan_cli.training.loop import train
from cyclegan_cli.training.speed import SpeedPlan
from cyclegan_cli.training.trainer import Trainer
from tests.conftest import tiny_config

CPU = torch.device("cpu")


def quiet() -> Console:
    return Console(file=open(os.devnull, "w"))  # noqa: SIM115


def test_the_config_offers_every_registered_family() -> None:
    hints = typing.get_type_hints(TrainConfig)
    assert typing.get_args(hints["model"]) == tuple(FAMILIES)
    assert TrainConfig().model == "cyclegan" and FAMILIES["cyclegan"] is CycleGAN


def test_cyclegan_through_the_interface() -> None:
    cfg = TrainConfig(netG="resnet_6blocks", ngf=4, ndf=4, seed=0, pool_size=2, ema=0.0)
    family = CycleGAN(cfg, CPU, Amp(CPU), SpeedPlan.plain())
    assert isinstance(family, Family)
    gens = family.generators()
    assert list(gens) == ["AtoB", "BtoA"] and gens["AtoB"] is family.model.G_AB
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    losses = family.step(a, b)
    assert losses.shape == (len(family.loss_names),) and torch.isfinite(losses).all()
    state = family.state_dict()
    assert set(state) == {"nets", "opt_G", "opt_D", "sched_G", "sched_D", "pool_A", "pool_B"}
    assert set(state["nets"]) == {"G_AB", "G_BA", "D_A", "D_B"}
    assert set(family.rank_state()) == {"pool_A", "pool_B"}
    with torch.no_grad():
        row = family.sample_row(a[:1], b[:1])
    assert len(row) == 6 and all(t.shape == a[:1].shape for t in row)
    other = CycleGAN(cfg, CPU, Amp(CPU), SpeedPlan.plain())
    other.load_state_dict(state)
    for name, sd in other.net_states().items():
        for key, value in sd.items():
            assert torch.equal(value, state["nets"][name][key]), (name, key)


class Denoiser(Family):
    """A one-directional test family: one generator learns A -> B with an L1 loss against B
    (paired, as pix2pix will be), one Adam optimiser, no discriminator."""

    name = "denoiser"
    exports = {"AtoB": "G"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr)
        self.build_calls()

    def build_networks(self) -> nn.Module:
        net = nn.Module()
        net.G = build_generator(self.cfg.netG, **generator_options(self.cfg))
        return net

    @property
    def loss_names(self) -> list[str]:
        return ["l1"]

    def build_calls(self) -> None:
        self.g = self.model.G

    def step(self, real_a: Tensor, real_b: Tensor) -> Tensor:
        with self.amp.autocast():
            loss = (self.g(real_a) - real_b).abs().mean()
        self.opt.zero_grad(set_to_none=True)
        self.amp.backward_and_step(loss, self.opt)
        self.amp.update()
        return loss.detach().float()[None]

    def sample_row(self, real_a: Tensor, real_b: Tensor) -> list[Tensor]:
        return [real_a, self.model.G(real_a), real_b]

    def state_dict(self) -> dict[str, Any]:
        return {"nets": self.net_states(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_net_states(state["nets"])
        self.opt.load_state_dict(state["opt"])

    def end_epoch(self) -> None:
        pass

    @property
    def lr(self) -> float:
        return float(self.opt.param_groups[0]["lr"])


@pytest.fixture
def denoiser(monkeypatch):
    monkeypatch.setitem(FAMILIES, "denoiser", Denoiser)
    monkeypatch.setattr(families_module, "FAMILIES", FAMILIES)
    monkeypatch.setattr(config_module, "ModelFamily", Literal["cyclegan", "denoiser"])


def test_a_second_family_trains_resumes_and_exports(denoiser, tiny_data, tmp_path) -> None:
    cfg = tiny_config(tiny_data, tmp_path / "runs", model="denoiser", max_steps=3, log_every=1)
    first = train(cfg, console=quiet(), quiet=True)
    run = RunDir(first.run_dir)
    state = load_checkpoint(run.latest)
    assert state["exports"] == {"AtoB": "G"} and set(state["trainer"]["nets"]) == {"G"}
    assert "opt" in state["trainer"] and "opt_G" not in state["trainer"]
    assert (run.samples / "step_0000003.png").is_file()
    resumed = train(resume=run.path, overrides={"max_steps": 5}, console=quiet(), quiet=True)
    assert resumed.global_step == 5
    # export and the torch backend find its one generator; the other direction is refused
    (result,) = export_run(run.path, out_dir=tmp_path / "onnx", verify=True)
    assert result.path.name == f"{run.path.name}-AtoB.onnx"
    with pytest.raises(ExportError, match="no BtoA generator"):
        export_run(run.path, direction="BtoA", out_dir=tmp_path / "onnx")
    with pytest.raises(CheckpointError, match="no BtoA generator"):
        load_generator(run.path, "BtoA")
    torch_out = load_model(run.path, backend="torch", direction="AtoB")
    assert torch_out.info.direction == "AtoB"


def test_trainer_state_is_the_family_state_plus_counters(denoiser) -> None:
    cfg = TrainConfig(model="denoiser", netG="resnet_6blocks", ngf=4, seed=0)
    t = Trainer(cfg, CPU)
    assert isinstance(t.family, Denoiser) and t.loss_names == ["l1"]
    t.train_step(torch.zeros(1, 3, 32, 32), torch.ones(1, 3, 32, 32))
    state = t.state_dict()
    assert set(state) == {"nets", "opt", "scaler", "epoch", "step_in_epoch", "global_step"}
    assert state["global_step"] == 1 and list(t.pop_mean_losses()) == ["l1"]


def test_eval_without_ground_truth_needs_both_directions(tmp_path, tiny_data) -> None:
    from cyclegan_cli.errors import CganError
    from cyclegan_cli.training.evaluator import TrainingEvaluator

    cfg = tiny_config(tiny_data, tmp_path, eval_every=2, eval_a=str(tiny_data / "testA"))
    TrainingEvaluator(cfg, tmp_path / "run", ["AtoB", "BtoA"])  # cycle PSNR: fine
    with pytest.raises(CganError, match="AtoB only, so it has no cycle to score; give "
                       "--eval-target"):
        TrainingEvaluator(cfg, tmp_path / "run", ["AtoB"])
    paired = tiny_config(tiny_data, tmp_path, eval_every=2, eval_a=str(tiny_data / "testA"),
                         eval_target=str(tiny_data / "testB_true"))
    TrainingEvaluator(paired, tmp_path / "run", ["AtoB"])  # PSNR against the target: fine
