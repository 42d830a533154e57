"""What the families with one generator G and one discriminator D share (pix2pix, CUT): their
optimisers and schedules, the weight average, the calls (DDP, compile), the discriminator's
update, the sample row and the checkpoint state. A subclass builds ``G`` and ``D`` (and
``G_ema`` with ``--ema``) and writes its step."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from cyclegan_cli.losses import discriminator_terms, gradient_penalty
from cyclegan_cli.training.augment import translate, unchanged
from cyclegan_cli.training.distributed import wrap
from cyclegan_cli.training.ema import WeightAverage
from cyclegan_cli.training.families.base import Family
from cyclegan_cli.training.schedule import build_scheduler
from cyclegan_cli.training.speed import compiled


class OneGenerator(Family):
    """One generator and one discriminator, each with its own Adam and schedule."""

    exports = {"AtoB": "G"}  # (an instance exports its own direction, and G_ema with --ema)
    sample_columns = ("input", "output", "target")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg, m = self.cfg, self.model
        betas = (cfg.beta1, cfg.beta2)
        fused = {"fused": True} if self.speed.fused_adam else {}
        self.opt_G = torch.optim.Adam(self.generator_parameters(), lr=cfg.lr, betas=betas,
                                      **fused)
        self.opt_D = torch.optim.Adam(m.D.parameters(), lr=cfg.lr, betas=betas, **fused)
        self.build_calls()
        self.sched_G = build_scheduler(self.opt_G, cfg)
        self.sched_D = build_scheduler(self.opt_D, cfg)
        self.augment: Callable[[Tensor], Tensor] = translate if cfg.d_augment else unchanged
        self.ema = WeightAverage(cfg.ema, [(m.G, m.G_ema)]) if cfg.ema else None
        self.exports = {self.directions(cfg)[0]: "G_ema" if cfg.ema else "G"}

    # -- what a subclass may change -----------------------------------------------------------
    def generator_parameters(self) -> Iterable[nn.Parameter]:
        """What the generator's optimiser trains (CUT adds its projector)."""
        return self.model.G.parameters()

    def generator_module(self) -> nn.Module:
        """What one generator call runs (through DDP under torchrun)."""
        return self.model.G

    # -- shared --------------------------------------------------------------------------------
    def build_calls(self) -> None:
        """The generator's call and D's own update go through DDP under torchrun; the frozen
        D of the generator's update is called directly."""
        mode, d = self.speed.compile, self.model.D
        self.g = compiled(wrap(self.generator_module(), self.dist, self.device), mode)
        self.d_update = compiled(wrap(d, self.dist, self.device), mode)
        self.d_frozen = compiled(d, mode) if self.dist is not None else self.d_update

    def layout(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.speed.channels_last \
            else x

    def update_discriminator(self, real: Tensor, fake: Tensor) -> list[Tensor]:
        """One step of D on ``real`` against (detached) ``fake`` images, its loss halved as in
        the references (D sees the fakes first where the calls are not fused, as they do).
        Returns the real and fake terms, and the gradient penalty with wgangp."""
        cfg, amp, aug = self.cfg, self.amp, self.augment
        with amp.autocast():
            if self.speed.fuse_calls and fake.shape == real.shape:
                pred_real, pred_fake = self.d_update(aug(torch.cat([real, fake]))).split(
                    real.shape[0])
            else:
                pred_fake = self.d_update(aug(fake))
                pred_real = self.d_update(aug(real))
            d_real, d_fake = discriminator_terms(cfg.gan_mode, pred_real, pred_fake,
                                                 cfg.label_smoothing)
        loss = (d_real + d_fake) * 0.5
        terms = [d_real, d_fake]
        if cfg.gan_mode == "wgangp":
            gp = cfg.gp_weight * gradient_penalty(self.model.D, real, fake,
                                                  target=cfg.gp_target,
                                                  one_sided=cfg.gp_one_sided)
            loss = loss + gp
            terms.append(gp)
        self.opt_D.zero_grad(set_to_none=True)
        amp.backward_and_step(loss, self.opt_D)
        return terms

    def update_generator(self, losses: Callable[[], list[Tensor]]) -> list[Tensor]:
        """One step of the generator on the sum of ``losses()`` (computed with D frozen), then
        the mixed precision's scale and the weight average. Returns the losses."""
        d = self.model.D
        d.requires_grad_(False)
        with self.amp.autocast():
            parts = losses()
        self.opt_G.zero_grad(set_to_none=True)
        self.amp.backward_and_step(torch.stack(parts).sum(), self.opt_G)
        d.requires_grad_(True)
        self.amp.update()
        if self.ema is not None:
            self.ema.update()
        return parts

    def sample_row(self, real_a: Tensor, real_b: Tensor) -> list[Tensor]:
        """input, its translation (by the exported generator), real B or the target."""
        net = getattr(self.model, next(iter(self.exports.values())))
        return [real_a, net(real_a), real_b]

    def state_dict(self) -> dict[str, Any]:
        return {"nets": self.net_states(), **self.optimiser_states(),
                **({"ema_updates": self.ema.updates} if self.ema is not None else {})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_net_states(state["nets"])
        self.load_optimiser_states(state)
        if self.ema is not None:
            self.ema.updates = int(state.get("ema_updates", 0))
