"""pix2pix (Isola et al. 2017): one generator G (input -> output) trained on pairs, and a
conditional discriminator D that judges (input, image) pairs: the input concatenated with
either the real target or G's output, 6 channels. Losses: ``lambda_gan`` × adversarial
(``--gan-mode``, vanilla by default) + ``lambda_L1`` × L1(G(input), target); the
discriminator's loss is halved, as in the reference. One Adam optimiser for G and one for D.

The step follows the reference's order: G's output once, D's update on it (detached), then
G's update against the updated D. ``--direction BtoA`` makes B the input (the data layer
swaps each pair); the family exports its one generator under that direction.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from cyclegan_cli.config import TrainConfig, generator_options
from cyclegan_cli.losses import discriminator_terms, generator_loss, gradient_penalty
from cyclegan_cli.models import build_discriminator, build_generator
from cyclegan_cli.training.augment import translate, unchanged
from cyclegan_cli.training.distributed import wrap
from cyclegan_cli.training.ema import WeightAverage
from cyclegan_cli.training.families.base import Family
from cyclegan_cli.training.pool import ImagePool
from cyclegan_cli.training.schedule import build_scheduler
from cyclegan_cli.training.speed import compiled


class Pix2PixNets(nn.Module):
    """G, then the conditional D (its input: the input image and an output, concatenated)."""

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__()
        self.G = build_generator(cfg.netG, **generator_options(cfg))
        self.D = build_discriminator(cfg.netD, input_nc=6, ndf=cfg.ndf, n_layers=cfg.n_layers_D,
                                     norm=cfg.norm, init_type=cfg.init_type,
                                     init_gain=cfg.init_gain)
        if cfg.ema:  # a copy (no random numbers drawn)
            self.G_ema = copy.deepcopy(self.G).requires_grad_(False)


def conditional_pair(source: Tensor, image: Tensor) -> Tensor:
    """What the conditional discriminator sees: the input and an output (real or generated),
    concatenated along the channels (input first)."""
    return torch.cat([source, image], dim=1)


def pix2pix_losses(cfg: TrainConfig, pred_fake: Tensor, fake: Tensor, target: Tensor
                   ) -> tuple[Tensor, Tensor]:
    """The generator's weighted (adversarial, L1) losses, from the discriminator's scores of
    its (input, output) pairs."""
    return (cfg.lambda_gan * generator_loss(cfg.gan_mode, pred_fake),
            cfg.lambda_L1 * (fake.float() - target.float()).abs().mean())


class Pix2Pix(Family):
    """The reference pix2pix training step, with the speed plan's levers."""

    name = "pix2pix"
    exports = {"AtoB": "G"}  # (an instance exports its own: --direction, G_ema with --ema)
    sample_columns = ("input", "output", "target")

    @classmethod
    def directions(cls, cfg: TrainConfig) -> list[str]:
        return [cfg.direction]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg, m = self.cfg, self.model
        betas = (cfg.beta1, cfg.beta2)
        fused = {"fused": True} if self.speed.fused_adam else {}
        self.opt_G = torch.optim.Adam(m.G.parameters(), lr=cfg.lr, betas=betas, **fused)
        self.opt_D = torch.optim.Adam(m.D.parameters(), lr=cfg.lr, betas=betas, **fused)
        self.build_calls()
        self.sched_G = build_scheduler(self.opt_G, cfg)
        self.sched_D = build_scheduler(self.opt_D, cfg)
        rank = self.dist.rank if self.dist else 0
        self.pool = ImagePool(cfg.pool_size, seed=((cfg.seed or 0) + 7919 * rank) * 2 + 1)
        self.augment: Callable[[Tensor], Tensor] = translate if cfg.d_augment else unchanged
        self.ema = WeightAverage(cfg.ema, [(m.G, m.G_ema)]) if cfg.ema else None
        self.exports = {cfg.direction: "G_ema" if cfg.ema else "G"}

    def build_networks(self) -> nn.Module:
        return Pix2PixNets(self.cfg)

    @property
    def loss_names(self) -> list[str]:
        return ["D_real", "D_fake", "G_GAN", "L1"] + (
            ["gp"] if self.cfg.gan_mode == "wgangp" else [])

    def build_calls(self) -> None:
        """G and D's own update go through DDP under torchrun; the frozen D of G's update is
        called directly."""
        mode, m = self.speed.compile, self.model
        self.g = compiled(wrap(m.G, self.dist, self.device), mode)
        self.d_update = compiled(wrap(m.D, self.dist, self.device), mode)
        self.d_frozen = compiled(m.D, mode) if self.dist is not None else self.d_update

    def _layout(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.speed.channels_last \
            else x

    def step(self, real_a: Tensor, real_b: Tensor) -> Tensor:
        """One step on a batch of (input, target) pairs: ``real_a`` is the input."""
        cfg, m, amp, aug = self.cfg, self.model, self.amp, self.augment
        source, target = self._layout(real_a), self._layout(real_b)
        mode, n = cfg.gan_mode, source.shape[0]
        if self.speed.compile == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()
        with amp.autocast():
            fake = self.g(source)
        # D: real pairs against generated ones (from the pool when there is one)
        fake_pair = self.pool.query(conditional_pair(source, fake).detach())
        real_pair = conditional_pair(source, target)
        with amp.autocast():
            if self.speed.fuse_calls and fake_pair.shape == real_pair.shape:
                pred_real, pred_fake = self.d_update(aug(torch.cat([real_pair, fake_pair]))
                                                     ).split(n)
            else:
                pred_fake = self.d_update(aug(fake_pair))
                pred_real = self.d_update(aug(real_pair))
            d_real, d_fake = discriminator_terms(mode, pred_real, pred_fake,
                                                 cfg.label_smoothing)
        loss_D = (d_real + d_fake) * 0.5
        extra = []
        if mode == "wgangp":
            gp = cfg.gp_weight * gradient_penalty(m.D, real_pair, fake_pair,
                                                  target=cfg.gp_target,
                                                  one_sided=cfg.gp_one_sided)
            loss_D = loss_D + gp
            extra.append(gp)
        self.opt_D.zero_grad(set_to_none=True)
        amp.backward_and_step(loss_D, self.opt_D)
        # G: fool the updated D, and stay close to the target
        m.D.requires_grad_(False)
        with amp.autocast():
            pred = self.d_frozen(aug(conditional_pair(source, fake)))
            g_gan, g_l1 = pix2pix_losses(cfg, pred, fake, target)
        self.opt_G.zero_grad(set_to_none=True)
        amp.backward_and_step(g_gan + g_l1, self.opt_G)
        m.D.requires_grad_(True)
        amp.update()
        if self.ema is not None:
            self.ema.update()
        return torch.stack([p.detach().float() for p in (d_real, d_fake, g_gan, g_l1, *extra)])

    def sample_row(self, real_a: Tensor, real_b: Tensor) -> list[Tensor]:
        """input, output (of the exported generator), target (:attr:`sample_columns`)."""
        net = getattr(self.model, self.exports[self.cfg.direction])
        return [real_a, net(real_a), real_b]

    def state_dict(self) -> dict[str, Any]:
        return {
            "nets": self.net_states(),
            **self.optimiser_states(),
            "pool": self.pool.state_dict(),
            **({"ema_updates": self.ema.updates} if self.ema is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_net_states(state["nets"])
        self.load_optimiser_states(state)
        self.pool.load_state_dict(state["pool"], self.device)
        if self.ema is not None:
            self.ema.updates = int(state.get("ema_updates", 0))

    def rank_state(self) -> dict[str, Any]:
        return {"pool": self.pool.state_dict()}

    def load_rank_state(self, state: dict[str, Any]) -> None:
        if "pool" in state:
            self.pool.load_state_dict(state["pool"], self.device)
