"""Network registry: build reference-compatible CycleGAN generators and discriminators by name.

>>> net_g = build_generator("resnet_9blocks")
>>> net_d = build_discriminator("basic")
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .discriminators import NLayerDiscriminator, PixelDiscriminator
from .generators import (
    UPSAMPLING,
    ResnetBlock,
    ResnetGenerator,
    UnetGenerator,
    UnetSkipConnectionBlock,
)
from .layers import INIT_TYPES, NORMS, init_weights, norm_layer, uses_bias
from .projector import PatchProjector, tapped_channels

__all__ = [
    "DISCRIMINATORS",
    "GENERATORS",
    "INIT_TYPES",
    "NORMS",
    "RESIDUAL_GENERATORS",
    "UPSAMPLING",
    "NLayerDiscriminator",
    "PatchProjector",
    "PixelDiscriminator",
    "ResnetBlock",
    "ResnetGenerator",
    "UnetGenerator",
    "UnetSkipConnectionBlock",
    "build_discriminator",
    "build_generator",
    "count_parameters",
    "generator_size_multiple",
    "init_weights",
    "tapped_channels",
    "norm_layer",
    "uses_bias",
]

GENERATORS = ("resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128", "unet_64")
DISCRIMINATORS = ("basic", "n_layers", "pixel")

# Generators that can predict a change to their input (``residual=True``).
RESIDUAL_GENERATORS = ("resnet_9blocks", "resnet_6blocks")

# name -> (factory(input_nc, output_nc, ngf, norm, use_dropout), input size multiple)
_GENERATOR_SPECS: dict[str, tuple[Callable[..., nn.Module], int]] = {
    "resnet_9blocks": (lambda *a, **kw: ResnetGenerator(*a, n_blocks=9, **kw),
                       ResnetGenerator.size_multiple),
    "resnet_6blocks": (lambda *a, **kw: ResnetGenerator(*a, n_blocks=6, **kw),
                       ResnetGenerator.size_multiple),
    "unet_256": (lambda i, o, g, n, d: UnetGenerator(i, o, 8, g, n, d), 2**8),
    "unet_128": (lambda i, o, g, n, d: UnetGenerator(i, o, 7, g, n, d), 2**7),
    # six levels, for small crops (the CPU sizes of QUICK_CPU): not in the reference
    "unet_64": (lambda i, o, g, n, d: UnetGenerator(i, o, 6, g, n, d), 2**6),
}


def _check_name(name: str, valid: tuple[str, ...], what: str) -> None:
    if name not in valid:
        raise ValueError(f"unknown {what} {name!r}; choose one of: {', '.join(valid)}")


def build_generator(
    name: str,
    *,
    input_nc: int = 3,
    output_nc: int = 3,
    ngf: int = 64,
    norm: str = "instance",
    use_dropout: bool = False,
    init_type: str = "normal",
    init_gain: float = 0.02,
    residual: bool = False,
    colour_branch: bool = False,
    upsample: str = "transpose",
) -> nn.Module:
    """Build and initialize the generator ``name`` (one of :data:`GENERATORS`).

    ``residual`` (ResNet generators only) makes it predict a change to its input, starting
    as the identity, and ``colour_branch`` adds a per-pixel colour branch to a residual one:
    see :class:`ResnetGenerator`. ``upsample="resize"`` (ResNet generators only) doubles the
    resolution by resizing and a convolution instead of a transposed convolution.
    """
    _check_name(name, GENERATORS, "generator")
    if upsample != "transpose" and name not in RESIDUAL_GENERATORS:
        raise ValueError(f"upsample={upsample!r} is for {', '.join(RESIDUAL_GENERATORS)}, "
                         f"not {name!r}")
    extra = {"upsample": upsample} if upsample != "transpose" else {}
    if colour_branch and not residual:
        raise ValueError("the colour branch needs a residual generator (--residual)")
    if not residual:
        net = _GENERATOR_SPECS[name][0](input_nc, output_nc, ngf, norm, use_dropout, **extra)
        return init_weights(net, init_type, init_gain)
    if name not in RESIDUAL_GENERATORS:
        raise ValueError(f"residual generators are {', '.join(RESIDUAL_GENERATORS)}, "
                         f"not {name!r}")
    net = _GENERATOR_SPECS[name][0](input_nc, output_nc, ngf, norm, use_dropout, residual=True,
                                    colour_branch=colour_branch, **extra)
    init_weights(net, init_type, init_gain)
    net.zero_residual()
    return net


def build_discriminator(
    name: str,
    *,
    input_nc: int = 3,
    ndf: int = 64,
    n_layers: int = 3,
    norm: str = "instance",
    init_type: str = "normal",
    init_gain: float = 0.02,
) -> nn.Module:
    """Build and initialize the discriminator ``name`` (one of :data:`DISCRIMINATORS`).

    ``basic`` is the 70x70 PatchGAN (3 layers); ``n_layers`` is a PatchGAN with
    ``n_layers`` stride-2 layers; ``pixel`` is the 1x1 PixelGAN (``n_layers`` ignored).
    """
    _check_name(name, DISCRIMINATORS, "discriminator")
    net: nn.Module
    if name == "pixel":
        net = PixelDiscriminator(input_nc, ndf, norm)
    else:
        net = NLayerDiscriminator(input_nc, ndf, 3 if name == "basic" else n_layers, norm)
    return init_weights(net, init_type, init_gain)


def generator_size_multiple(name: str) -> int:
    """Spatial size that inputs to generator ``name`` must be a multiple of."""
    _check_name(name, GENERATORS, "generator")
    return _GENERATOR_SPECS[name][1]


def count_parameters(net: nn.Module) -> int:
    """Total number of parameter elements in ``net`` (trainable or not)."""
    return sum(p.numel() for p in net.parameters())
