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
from typing import Any

import torch
from torch import Tensor, nn

from cyclegan_cli.config import TrainConfig, generator_options
from cyclegan_cli.losses import generator_loss
from cyclegan_cli.models import build_discriminator, build_generator
from cyclegan_cli.training.families.single import OneGenerator
from cyclegan_cli.training.pool import ImagePool


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


class Pix2Pix(OneGenerator):
    """The reference pix2pix training step, with the speed plan's levers."""

    name = "pix2pix"

    @classmethod
    def directions(cls, cfg: TrainConfig) -> list[str]:
        return [cfg.direction]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg = self.cfg
        rank = self.dist.rank if self.dist else 0
        self.pool = ImagePool(cfg.pool_size, seed=((cfg.seed or 0) + 7919 * rank) * 2 + 1)

    def build_networks(self) -> nn.Module:
        return Pix2PixNets(self.cfg)

    @property
    def loss_names(self) -> list[str]:
        return ["D_real", "D_fake", "G_GAN", "L1"] + (
            ["gp"] if self.cfg.gan_mode == "wgangp" else [])

    def step(self, real_a: Tensor, real_b: Tensor) -> Tensor:
        """One step on a batch of (input, target) pairs: ``real_a`` is the input."""
        cfg = self.cfg
        source, target = self.layout(real_a), self.layout(real_b)
        if self.speed.compile == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()
        with self.amp.autocast():
            fake = self.g(source)
        # D: real pairs against generated ones (from the pool when there is one)
        d_terms = self.update_discriminator(
            conditional_pair(source, target),
            self.pool.query(conditional_pair(source, fake).detach()))
        # G: fool the updated D, and stay close to the target
        g_terms = self.update_generator(lambda: list(pix2pix_losses(
            cfg, self.d_frozen(self.augment(conditional_pair(source, fake))), fake, target)))
        return torch.stack([p.detach().float() for p in (*d_terms[:2], *g_terms,
                                                          *d_terms[2:])])

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"pool": self.pool.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.pool.load_state_dict(state["pool"], self.device)

    def rank_state(self) -> dict[str, Any]:
        return {"pool": self.pool.state_dict()}

    def load_rank_state(self, state: dict[str, Any]) -> None:
        if "pool" in state:
            self.pool.load_state_dict(state["pool"], self.device)
