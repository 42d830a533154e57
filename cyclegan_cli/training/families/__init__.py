"""Model families (``cgan train --model NAME``): each one a :class:`Family` in a module of its
own here, registered in :data:`FAMILIES`. A new family goes in a new module, added below."""

from __future__ import annotations

from typing import Any

from cyclegan_cli.training.families.base import Family
from cyclegan_cli.training.families.cut import CUT, FastCUT
from cyclegan_cli.training.families.cyclegan import CycleGAN
from cyclegan_cli.training.families.pix2pix import Pix2Pix

FAMILIES: dict[str, type[Family]] = {
    family.name: family for family in (CycleGAN, Pix2Pix, CUT, FastCUT)}


def build_family(cfg: Any, *args: Any, **kwargs: Any) -> Family:
    """The family ``cfg.model`` names, built for the arguments of :class:`Family`."""
    return FAMILIES[cfg.model](cfg, *args, **kwargs)


__all__ = ["CUT", "FAMILIES", "CycleGAN", "Family", "FastCUT", "Pix2Pix", "build_family"]
