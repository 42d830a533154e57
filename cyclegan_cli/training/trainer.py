"""The CycleGAN training step: generators G_AB (A->B) and G_BA (B->A), discriminators D_A and
D_B (real vs. generated images of domain A and of domain B), their optimisers, schedulers and
history pools, and the complete state a checkpoint needs.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from cyclegan_cli.config import TrainConfig
from cyclegan_cli.losses import (
    cycle_loss,
    discriminator_terms,
    generator_loss,
    gradient_penalty,
    identity_loss,
)
from cyclegan_cli.models import build_discriminator, build_generator
from cyclegan_cli.training.device import PRECISIONS
from cyclegan_cli.training.distributed import Dist, all_true, mean_over_ranks, wrap
from cyclegan_cli.training.pool import ImagePool
from cyclegan_cli.training.schedule import build_scheduler
from cyclegan_cli.training.speed import SpeedPlan, compiled, resolve_speed

NETS = ("G_AB", "G_BA", "D_A", "D_B")


class CycleGAN(nn.Module):
    """The four networks of CycleGAN, built from a :class:`TrainConfig`."""

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__()
        g = dict(ngf=cfg.ngf, norm=cfg.norm, use_dropout=cfg.dropout, init_type=cfg.init_type,
                 init_gain=cfg.init_gain, residual=cfg.residual)
        d = dict(ndf=cfg.ndf, n_layers=cfg.n_layers_D, norm=cfg.norm, init_type=cfg.init_type,
                 init_gain=cfg.init_gain)
        self.G_AB = build_generator(cfg.netG, **g)
        self.G_BA = build_generator(cfg.netG, **g)
        self.D_A = build_discriminator(cfg.netD, **d)
        self.D_B = build_discriminator(cfg.netD, **d)

    def generators(self) -> list[nn.Module]:
        return [self.G_AB, self.G_BA]

    def discriminators(self) -> list[nn.Module]:
        return [self.D_A, self.D_B]


def _set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def to_model_range(batch: Tensor, device: torch.device) -> Tensor:
    """uint8 NxCxHxW (possibly pinned) -> float in [-1, 1] on ``device``; scaled there."""
    return batch.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)


class Trainer:
    """Owns the networks, optimisers, schedulers, pools and counters of one training run."""

    def __init__(self, cfg: TrainConfig, device: torch.device, precision: str = "fp32",
                 speed: SpeedPlan | None = None, dist: Dist | None = None) -> None:
        self.cfg = cfg
        self.dist = dist
        self.device = device
        self.precision = precision
        self.amp_dtype = PRECISIONS[precision]
        self.speed = speed or resolve_speed(cfg, device)
        self.model = CycleGAN(cfg).to(device)
        if self.speed.channels_last:
            self.model.to(memory_format=torch.channels_last)
        betas = (cfg.beta1, cfg.beta2)
        m = self.model
        fused = {"fused": True} if self.speed.fused_adam else {}
        self.opt_G = torch.optim.Adam(
            itertools.chain(m.G_AB.parameters(), m.G_BA.parameters()), lr=cfg.lr, betas=betas,
            **fused)
        self.opt_D = torch.optim.Adam(
            itertools.chain(m.D_A.parameters(), m.D_B.parameters()), lr=cfg.lr, betas=betas,
            **fused)
        self._build_calls()
        self._compile_pending = self.speed.compile != "off"
        self.on_warning: Callable[[str], None] = lambda text: warnings.warn(text, stacklevel=2)
        self.sched_G = build_scheduler(self.opt_G, cfg)
        self.sched_D = build_scheduler(self.opt_D, cfg)
        seed = (cfg.seed or 0) + 7919 * (dist.rank if dist else 0)  # own pools on each rank
        self.pool_A = ImagePool(cfg.pool_size, seed=seed * 2 + 1)
        self.pool_B = ImagePool(cfg.pool_size, seed=seed * 2 + 2)
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        self.use_identity = cfg.lambda_identity > 0
        self.loss_names = ["D_A", "D_B", "G_AB", "G_BA", "cycle_A", "cycle_B"]
        if self.use_identity:
            self.loss_names += ["idt_A", "idt_B"]
        if cfg.gan_mode == "wgangp":
            self.loss_names += ["gp_A", "gp_B"]
        self.epoch = 0  # current epoch (0-based)
        self.step_in_epoch = 0  # batches done in the current epoch
        self.global_step = 0  # batches done in total
        self._loss_sum = torch.zeros(len(self.loss_names), device=device)
        self._loss_count = 0
        self._finite = torch.ones((), dtype=torch.bool, device=device)

    def _build_calls(self, mode: str | None = None) -> None:
        """What the step calls: the networks, compiled when asked. Under torchrun the
        generators and the discriminators' own update go through DistributedDataParallel;
        the frozen discriminators of the generator update are called directly."""
        mode = self.speed.compile if mode is None else mode
        m = self.model
        synced = {name: wrap(getattr(m, name), self.dist, self.device) for name in NETS}
        self.nets: dict[str, Callable[..., Tensor]] = {
            name: compiled(synced[name] if name.startswith("G") else getattr(m, name), mode)
            for name in NETS}
        self.d_nets: dict[str, Callable[..., Tensor]] = (
            {name: compiled(synced[name], mode) for name in ("D_A", "D_B")}
            if self.dist is not None else {name: self.nets[name] for name in ("D_A", "D_B")})

    # -- the step ------------------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def train_step(self, real_A: Tensor, real_B: Tensor) -> Tensor:
        """One optimisation step of both generators, then both discriminators.

        Inputs are float batches in [-1, 1] on the device. Returns the losses as one tensor on
        the device, ordered as ``self.loss_names`` (no host synchronisation).
        """
        if self._compile_pending:
            return self._first_compiled_step(real_A, real_B)
        return self._step(real_A, real_B)

    def _first_compiled_step(self, real_A: Tensor, real_B: Tensor) -> Tensor:
        """The first step with compiled networks; where compiling fails, the state is put
        back and the step runs eagerly (and so does the rest of the run)."""
        saved = copy.deepcopy({"state": self.state_dict(), "rng": torch.get_rng_state(),
                               "sums": (self._loss_sum, self._loss_count, self._finite)})
        try:
            losses = self._step(real_A, real_B)
        except Exception as exc:  # any compiler or backend failure: fall back to eager
            reason = (str(exc).strip().splitlines() or [""])[0][:200]
            self.on_warning(f"torch.compile ({self.speed.compile}) failed here "
                            f"({type(exc).__name__}: {reason}); training without it")
            self.load_state_dict(saved["state"])
            torch.set_rng_state(saved["rng"])
            self._loss_sum, self._loss_count, self._finite = saved["sums"]
            self.speed.compile = "off"
            self._build_calls()
            torch._dynamo.reset()
            losses = self._step(real_A, real_B)
        self._compile_pending = False
        return losses

    def _layout(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.speed.channels_last \
            else x

    def _step(self, real_A: Tensor, real_B: Tensor) -> Tensor:
        cfg, m, nets = self.cfg, self.model, self.nets
        G_AB, G_BA, D_A, D_B = (nets[name] for name in NETS)
        mode = cfg.gan_mode
        fuse = self.speed.fuse_calls and real_A.shape == real_B.shape  # (sizes may differ)
        real_A, real_B = self._layout(real_A), self._layout(real_B)
        if self.speed.compile == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()
        n = real_A.shape[0]
        idt_A = idt_B = None
        # generators: adversarial + cycle (+ identity), with the discriminators frozen
        _set_requires_grad(m.discriminators(), False)
        with self.autocast():
            if fuse:  # instance norm is per sample, so one call per generator input set
                if self.use_identity:
                    fake_B, idt_B = G_AB(torch.cat([real_A, real_B])).split(n)
                    fake_A, idt_A, rec_A = G_BA(torch.cat([real_B, real_A, fake_B])).split(n)
                else:
                    fake_B = G_AB(real_A)
                    fake_A, rec_A = G_BA(torch.cat([real_B, fake_B])).split(n)
            else:
                fake_B = G_AB(real_A)
                rec_A = G_BA(fake_B)
                fake_A = G_BA(real_B)
                if self.use_identity:
                    idt_A, idt_B = G_BA(real_A), G_AB(real_B)
            rec_B = G_AB(fake_A)
            adv_AB = generator_loss(mode, D_B(fake_B))
            adv_BA = generator_loss(mode, D_A(fake_A))
            losses_G = [adv_AB, adv_BA,
                        cycle_loss(rec_A, real_A, cfg.lambda_A),
                        cycle_loss(rec_B, real_B, cfg.lambda_B)]
            if self.use_identity:
                losses_G += [
                    identity_loss(idt_A, real_A, cfg.lambda_A * cfg.lambda_identity),
                    identity_loss(idt_B, real_B, cfg.lambda_B * cfg.lambda_identity),
                ]
        loss_G = torch.stack(losses_G).sum()
        self.opt_G.zero_grad(set_to_none=True)
        self.scaler.scale(loss_G).backward()
        self.scaler.step(self.opt_G)
        _set_requires_grad(m.discriminators(), True)

        # discriminators: real vs. fakes from the history pools, halved as in the reference
        pooled_A = self.pool_A.query(fake_A.detach())
        pooled_B = self.pool_B.query(fake_B.detach())
        with self.autocast():
            D_A, D_B = self.d_nets["D_A"], self.d_nets["D_B"]
            if fuse and pooled_A.shape == real_A.shape and pooled_B.shape == real_B.shape:
                pred_A = D_A(torch.cat([real_A, pooled_A])).split(n)
                pred_B = D_B(torch.cat([real_B, pooled_B])).split(n)
            else:
                pred_A = (D_A(real_A), D_A(pooled_A))
                pred_B = (D_B(real_B), D_B(pooled_B))
            loss_D_A = sum(discriminator_terms(mode, *pred_A, cfg.label_smoothing)) * 0.5
            loss_D_B = sum(discriminator_terms(mode, *pred_B, cfg.label_smoothing)) * 0.5
        losses_D = [loss_D_A, loss_D_B]
        loss_D = loss_D_A + loss_D_B
        if mode == "wgangp":
            gps = [cfg.gp_weight * gradient_penalty(
                       net, real, fake, target=cfg.gp_target, one_sided=cfg.gp_one_sided)
                   for net, real, fake in ((m.D_A, real_A, pooled_A), (m.D_B, real_B, pooled_B))]
            loss_D = loss_D + gps[0] + gps[1]
        self.opt_D.zero_grad(set_to_none=True)
        self.scaler.scale(loss_D).backward()
        self.scaler.step(self.opt_D)
        self.scaler.update()

        parts = losses_D + losses_G
        if mode == "wgangp":
            parts += gps
        losses = torch.stack([p.detach().float() for p in parts])
        self._loss_sum += losses
        self._loss_count += 1
        self._finite &= torch.isfinite(losses).all()
        self.step_in_epoch += 1
        self.global_step += 1
        return losses

    # -- bookkeeping -----------------------------------------------------------------------
    def pop_mean_losses(self) -> dict[str, float]:
        """Mean of each loss since the last call (one host synchronisation)."""
        if self._loss_count == 0:
            return {}
        values = mean_over_ranks(self._loss_sum / self._loss_count, self.dist).tolist()
        self._loss_sum.zero_()
        self._loss_count = 0
        return dict(zip(self.loss_names, values, strict=True))

    def losses_finite(self) -> bool:
        """False once any loss since the start (or the last resume) was NaN or infinite."""
        return bool(all_true(self._finite, self.dist).item())

    def end_epoch(self) -> None:
        self.sched_G.step()
        self.sched_D.step()
        self.epoch += 1
        self.step_in_epoch = 0

    @property
    def lr(self) -> float:
        return float(self.opt_G.param_groups[0]["lr"])

    @torch.no_grad()
    def translate_samples(self, real_A: Tensor, real_B: Tensor) -> list[list[Tensor]]:
        """[[real A, fake B, rec A], [real B, fake A, rec B]] in eval mode, for sample grids."""
        m = self.model
        m.eval()
        try:
            with self.autocast():
                fake_B, fake_A = m.G_AB(real_A), m.G_BA(real_B)
                rows = [[real_A, fake_B, m.G_BA(fake_B)], [real_B, fake_A, m.G_AB(fake_A)]]
        finally:
            m.train()
        return [[t.float() for t in row] for row in rows]

    def state_dict(self) -> dict[str, Any]:
        m = self.model
        return {
            "nets": {name: getattr(m, name).state_dict()
                     for name in ("G_AB", "G_BA", "D_A", "D_B")},
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "sched_G": self.sched_G.state_dict(),
            "sched_D": self.sched_D.state_dict(),
            "scaler": self.scaler.state_dict(),
            "pool_A": self.pool_A.state_dict(),
            "pool_B": self.pool_B.state_dict(),
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        m = self.model
        for name, sd in state["nets"].items():
            getattr(m, name).load_state_dict(sd)
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.sched_G.load_state_dict(state["sched_G"])
        self.sched_D.load_state_dict(state["sched_D"])
        self.scaler.load_state_dict(state["scaler"])
        self.pool_A.load_state_dict(state["pool_A"], self.device)
        self.pool_B.load_state_dict(state["pool_B"], self.device)
        self.epoch = int(state["epoch"])
        self.step_in_epoch = int(state["step_in_epoch"])
        self.global_step = int(state["global_step"])
