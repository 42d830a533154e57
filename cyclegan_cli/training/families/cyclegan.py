"""CycleGAN (Zhu et al. 2017): generators G_AB (A->B) and G_BA (B->A), discriminators D_A and
D_B (real vs. generated images of domain A and of domain B), adversarial + cycle (+ identity)
losses, history pools of generated images, and one Adam optimiser for the generators and one
for the discriminators."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from cyclegan_cli.config import generator_options
from cyclegan_cli.losses import (
    cycle_loss,
    discriminator_terms,
    generator_loss,
    gradient_penalty,
    identity_loss,
)
from cyclegan_cli.models import build_discriminator, build_generator
from cyclegan_cli.training.augment import translate, unchanged
from cyclegan_cli.training.distributed import wrap
from cyclegan_cli.training.ema import WeightAverage
from cyclegan_cli.training.families.base import Family
from cyclegan_cli.training.pool import ImagePool
from cyclegan_cli.training.schedule import build_scheduler
from cyclegan_cli.training.speed import compiled

NETS = ("G_AB", "G_BA", "D_A", "D_B")


class CycleGANNets(nn.Module):
    """The four networks, built from a config (in this order: the random initialisation of a
    run depends on it)."""

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        g = generator_options(cfg)
        d = dict(ndf=cfg.ndf, n_layers=cfg.n_layers_D, norm=cfg.norm, init_type=cfg.init_type,
                 init_gain=cfg.init_gain)
        self.G_AB = build_generator(cfg.netG, **g)
        self.G_BA = build_generator(cfg.netG, **g)
        self.D_A = build_discriminator(cfg.netD, **d)
        self.D_B = build_discriminator(cfg.netD, **d)
        if cfg.ema:  # copies (no random numbers drawn: the four networks are as without)
            self.G_AB_ema = copy.deepcopy(self.G_AB).requires_grad_(False)
            self.G_BA_ema = copy.deepcopy(self.G_BA).requires_grad_(False)

    def generators(self) -> list[nn.Module]:
        return [self.G_AB, self.G_BA]

    def discriminators(self) -> list[nn.Module]:
        return [self.D_A, self.D_B]


def _set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


class CycleGAN(Family):
    """The reference CycleGAN training step, with the speed plan's levers."""

    name = "cyclegan"
    exports = {"AtoB": "G_AB", "BtoA": "G_BA"}
    sample_columns = ("real A", "A→B", "A→B→A", "real B", "B→A", "B→A→B")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg, m = self.cfg, self.model
        betas = (cfg.beta1, cfg.beta2)
        fused = {"fused": True} if self.speed.fused_adam else {}
        self.opt_G = torch.optim.Adam(
            itertools.chain(m.G_AB.parameters(), m.G_BA.parameters()), lr=cfg.lr, betas=betas,
            **fused)
        self.opt_D = torch.optim.Adam(
            itertools.chain(m.D_A.parameters(), m.D_B.parameters()), lr=cfg.lr, betas=betas,
            **fused)
        self.build_calls()
        self.sched_G = build_scheduler(self.opt_G, cfg)
        self.sched_D = build_scheduler(self.opt_D, cfg)
        rank = self.dist.rank if self.dist else 0
        seed = (cfg.seed or 0) + 7919 * rank  # each rank keeps its own pools
        self.pool_A = ImagePool(cfg.pool_size, seed=seed * 2 + 1)
        self.pool_B = ImagePool(cfg.pool_size, seed=seed * 2 + 2)
        self.use_identity = cfg.lambda_identity > 0
        self.augment: Callable[[Tensor], Tensor] = translate if cfg.d_augment else unchanged
        self.ema = (WeightAverage(cfg.ema, [(m.G_AB, m.G_AB_ema), (m.G_BA, m.G_BA_ema)])
                    if cfg.ema else None)
        if cfg.ema:  # evaluation, best.pt and export use the averaged generators
            self.exports = {"AtoB": "G_AB_ema", "BtoA": "G_BA_ema"}

    def build_networks(self) -> nn.Module:
        return CycleGANNets(self.cfg)

    @property
    def loss_names(self) -> list[str]:
        names = ["D_A", "D_B", "G_AB", "G_BA", "cycle_A", "cycle_B"]
        if self.cfg.lambda_identity > 0:
            names += ["idt_A", "idt_B"]
        if self.cfg.gan_mode == "wgangp":
            names += ["gp_A", "gp_B"]
        return names

    def build_calls(self) -> None:
        """The generators and the discriminators' own update go through DDP under torchrun;
        the frozen discriminators of the generator update are called directly."""
        mode, m = self.speed.compile, self.model
        synced = {name: wrap(getattr(m, name), self.dist, self.device) for name in NETS}
        self.nets: dict[str, Callable[..., Tensor]] = {
            name: compiled(synced[name] if name.startswith("G") else getattr(m, name), mode)
            for name in NETS}
        self.d_nets: dict[str, Callable[..., Tensor]] = (
            {name: compiled(synced[name], mode) for name in ("D_A", "D_B")}
            if self.dist is not None else {name: self.nets[name] for name in ("D_A", "D_B")})

    def _layout(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.speed.channels_last \
            else x

    def step(self, real_a: Tensor, real_b: Tensor) -> Tensor:
        cfg, m, nets, amp = self.cfg, self.model, self.nets, self.amp
        real_A, real_B = self._layout(real_a), self._layout(real_b)
        G_AB, G_BA, D_A, D_B = (nets[name] for name in NETS)
        mode = cfg.gan_mode
        fuse = self.speed.fuse_calls and real_A.shape == real_B.shape  # (sizes may differ)
        if self.speed.compile == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()
        n = real_A.shape[0]
        idt_A = idt_B = None
        # generators: adversarial + cycle (+ identity), with the discriminators frozen
        _set_requires_grad(m.discriminators(), False)
        with amp.autocast():
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
            aug = self.augment
            adv_AB = generator_loss(mode, D_B(aug(fake_B)))
            adv_BA = generator_loss(mode, D_A(aug(fake_A)))
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
        amp.backward_and_step(loss_G, self.opt_G)
        if self.ema is not None:
            self.ema.update()
        _set_requires_grad(m.discriminators(), True)

        # discriminators: real vs. fakes from the history pools, halved as in the reference
        pooled_A = self.pool_A.query(fake_A.detach())
        pooled_B = self.pool_B.query(fake_B.detach())
        with amp.autocast():
            D_A, D_B = self.d_nets["D_A"], self.d_nets["D_B"]
            if fuse and pooled_A.shape == real_A.shape and pooled_B.shape == real_B.shape:
                pred_A = D_A(aug(torch.cat([real_A, pooled_A]))).split(n)
                pred_B = D_B(aug(torch.cat([real_B, pooled_B]))).split(n)
            else:
                pred_A = (D_A(aug(real_A)), D_A(aug(pooled_A)))
                pred_B = (D_B(aug(real_B)), D_B(aug(pooled_B)))
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
        amp.backward_and_step(loss_D, self.opt_D)
        amp.update()

        parts = losses_D + losses_G
        if mode == "wgangp":
            parts += gps
        return torch.stack([p.detach().float() for p in parts])

    def sample_row(self, real_a: Tensor, real_b: Tensor) -> list[Tensor]:
        """real A, fake B, rec A, real B, fake A, rec B (:attr:`sample_columns`)."""
        m = self.model
        fake_b, fake_a = m.G_AB(real_a), m.G_BA(real_b)
        return [real_a, fake_b, m.G_BA(fake_b), real_b, fake_a, m.G_AB(fake_a)]

    def state_dict(self) -> dict[str, Any]:
        return {
            "nets": self.net_states(),
            **self.optimiser_states(),
            "pool_A": self.pool_A.state_dict(),
            "pool_B": self.pool_B.state_dict(),
            **({"ema_updates": self.ema.updates} if self.ema is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_net_states(state["nets"])
        self.load_optimiser_states(state)
        self.pool_A.load_state_dict(state["pool_A"], self.device)
        self.pool_B.load_state_dict(state["pool_B"], self.device)
        if self.ema is not None:
            self.ema.updates = int(state.get("ema_updates", 0))

    def rank_state(self) -> dict[str, Any]:
        return {"pool_A": self.pool_A.state_dict(), "pool_B": self.pool_B.state_dict()}

    def load_rank_state(self, state: dict[str, Any]) -> None:
        if "pool_A" in state:
            self.pool_A.load_state_dict(state["pool_A"], self.device)
            self.pool_B.load_state_dict(state["pool_B"], self.device)
