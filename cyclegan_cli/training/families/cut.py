"""CUT and FastCUT (Park et al., ECCV 2020): one generator G (A -> B), one discriminator D (real
vs generated B), and a patch-wise contrastive loss in place of CycleGAN's cycle. The
generator's own encoder embeds the input and the output; a projector (2-layer MLP per tapped
layer, L2-normalised) maps sampled patches; PatchNCE asks each output patch to pick its own
input patch out of the image's other patches (:func:`~cyclegan_cli.losses.patch_nce_loss`).

Losses: ``lambda_gan`` × adversarial (LSGAN by default) + the PatchNCE loss (``lambda_nce``,
averaged over the tapped layers); CUT adds the identity NCE loss on G(B) against B and averages
the two; FastCUT has none, weights PatchNCE 10 and flips half of its inputs (flip
equivariance). The discriminator's loss is halved, as in the reference. No image pool.

G's output and every PatchNCE feature come from one call of :class:`GeneratorWithNCE` (one
forward per backward, as DistributedDataParallel wants); the NCE terms do not depend on D, so
computing them before D's update gives the reference's numbers.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from cyclegan_cli.config import TrainConfig, generator_options
from cyclegan_cli.losses import generator_loss, patch_nce_loss
from cyclegan_cli.models import (
    PatchProjector,
    build_discriminator,
    build_generator,
    tapped_channels,
)
from cyclegan_cli.training.families.single import OneGenerator

PROJECTOR_UNITS = 256  # the reference's netF_nc


class CUTNets(nn.Module):
    """G, D, then the projector F (its widths measured on G's tapped layers)."""

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__()
        self.G = build_generator(cfg.netG, **generator_options(cfg))
        self.D = build_discriminator(cfg.netD, ndf=cfg.ndf, n_layers=cfg.n_layers_D,
                                     norm=cfg.norm, init_type=cfg.init_type,
                                     init_gain=cfg.init_gain)
        self.F = PatchProjector(tapped_channels(self.G, self.G.NCE_LAYERS), PROJECTOR_UNITS,
                                cfg.init_type, cfg.init_gain)
        if cfg.ema:  # a copy (no random numbers drawn)
            self.G_ema = copy.deepcopy(self.G).requires_grad_(False)


class GeneratorWithNCE(nn.Module):
    """One step's generator work: G's outputs for A (and B, for the identity NCE loss) and
    the PatchNCE losses, from inputs flipped or not (flip equivariance)."""

    def __init__(self, g: nn.Module, f: PatchProjector, cfg: TrainConfig) -> None:
        super().__init__()
        self.g, self.f, self.cfg = g, f, cfg

    def nce(self, source: Tensor, output: Tensor, flipped: bool) -> Tensor:
        """PatchNCE of ``output`` against ``source`` (``output`` came from the flipped
        ``source`` when ``flipped``: its features are flipped back first)."""
        cfg, layers = self.cfg, self.g.NCE_LAYERS
        queries = self.g.encode(output, layers)
        if flipped:
            queries = [q.flip(3) for q in queries]
        with torch.no_grad():  # the keys carry no gradient (patch_nce_loss detaches them)
            keys, ids = self.f(self.g.encode(source, layers), cfg.nce_patches)
        projected, _ = self.f(queries, cfg.nce_patches, ids)
        n = source.shape[0]
        total = sum(patch_nce_loss(q, k, n, cfg.nce_temperature)
                    for q, k in zip(projected, keys, strict=True))
        return total * cfg.lambda_nce / len(layers)

    def forward(self, real_a: Tensor, real_b: Tensor, flipped: bool
                ) -> tuple[Tensor, Tensor, Tensor | None]:
        """(G(A), NCE of A, NCE of B or None)."""
        def run(x: Tensor) -> Tensor:
            return self.g(x.flip(3) if flipped else x)

        n = real_a.shape[0]
        if not self.cfg.nce_idt:
            fake_b, idt_b = run(real_a), None
        elif real_a.shape == real_b.shape:  # one call (instance norm is per sample)
            fake_b, idt_b = run(torch.cat([real_a, real_b])).split(n)
        else:  # whole images of two sizes (--preprocess none, batch 1)
            fake_b, idt_b = run(real_a), run(real_b)
        nce_a = self.nce(real_a, fake_b, flipped)
        nce_b = self.nce(real_b, idt_b, flipped) if idt_b is not None else None
        return fake_b, nce_a, nce_b


class CUT(OneGenerator):
    """The reference CUT training step, with the speed plan's levers."""

    name = "cut"
    sample_columns = ("real A", "A→B", "real B")

    def build_networks(self) -> nn.Module:
        return CUTNets(self.cfg)

    def generator_parameters(self) -> Iterable[nn.Parameter]:
        """G and the projector, in one Adam (the reference's two, with equal settings, are
        the same per-parameter arithmetic)."""
        return [*self.model.G.parameters(), *self.model.F.parameters()]

    def generator_module(self) -> nn.Module:
        return GeneratorWithNCE(self.model.G, self.model.F, self.cfg)

    @property
    def loss_names(self) -> list[str]:
        return (["D_real", "D_fake", "G_GAN", "NCE"] + (["NCE_Y"] if self.cfg.nce_idt else [])
                + (["gp"] if self.cfg.gan_mode == "wgangp" else []))

    def step(self, real_a: Tensor, real_b: Tensor) -> Tensor:
        cfg = self.cfg
        real_A, real_B = self.layout(real_a), self.layout(real_b)
        if self.speed.compile == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()
        # drawn every step (the random stream is the same with and without the flips)
        flipped = bool(torch.rand(()) < 0.5) and bool(cfg.flip_equivariance)
        with self.amp.autocast():
            fake_B, nce_a, nce_b = self.g(real_A, real_B, flipped)
        d_terms = self.update_discriminator(real_B, fake_B.detach())
        nce = nce_a if nce_b is None else (nce_a + nce_b) * 0.5
        g_gan, _ = self.update_generator(lambda: [
            cfg.lambda_gan * generator_loss(cfg.gan_mode, self.d_frozen(self.augment(fake_B))),
            nce])
        parts = [*d_terms[:2], g_gan, nce_a, *([nce_b] if nce_b is not None else []),
                 *d_terms[2:]]
        return torch.stack([p.detach().float() for p in parts])


class FastCUT(CUT):
    """FastCUT: the same family with its own defaults (config.FAMILY_DEFAULTS)."""

    name = "fastcut"
