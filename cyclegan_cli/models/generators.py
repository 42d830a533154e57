"""ResNet and U-Net generators, laid out exactly like the reference CycleGAN.

Module nesting and attribute names match junyanz/pytorch-CycleGAN-and-pix2pix
``models/networks.py`` so its saved state_dicts load with ``strict=True``.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import norm_layer, uses_bias

PADDING_TYPES = ("reflect", "replicate", "zero")


def _padding(padding_type: str) -> tuple[list[nn.Module], int]:
    """Explicit padding layers and the conv ``padding`` argument for a 3x3 conv."""
    if padding_type == "reflect":
        return [nn.ReflectionPad2d(1)], 0
    if padding_type == "replicate":
        return [nn.ReplicationPad2d(1)], 0
    if padding_type == "zero":
        return [], 1
    raise ValueError(
        f"unknown padding type {padding_type!r}; choose one of: {', '.join(PADDING_TYPES)}"
    )


class ResnetBlock(nn.Module):
    """Residual block: ``x + (pad, conv3x3, norm, ReLU, [dropout], pad, conv3x3, norm)(x)``."""

    def __init__(
        self,
        dim: int,
        padding_type: str = "reflect",
        norm: str = "instance",
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        layers: list[nn.Module] = []
        pad, p = _padding(padding_type)
        layers += [*pad, nn.Conv2d(dim, dim, 3, padding=p, bias=bias), make_norm(dim)]
        layers.append(nn.ReLU(True))
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        pad, p = _padding(padding_type)
        layers += [*pad, nn.Conv2d(dim, dim, 3, padding=p, bias=bias), make_norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


# Inputs are clamped to +-RESIDUAL_LIMIT before atanh in residual generators (atanh(1) = inf).
RESIDUAL_LIMIT = 1.0 - 1e-3


# How ResNet generators double the resolution: the reference's transposed convolutions, or
# nearest-neighbour resizing then a 3x3 convolution ("resize-conv", free of the transposed
# convolution's checkerboard pattern; Odena et al. 2016). Same parameter count.
UPSAMPLING = ("transpose", "resize")


class ResnetGenerator(nn.Module):
    """Johnson-style generator: 2 stride-2 downsamplings, ``n_blocks`` residual blocks, 2 up.

    Output is in [-1, 1] (Tanh) with the input's spatial size, which must be a multiple
    of :attr:`size_multiple`. With ``residual=True`` the network predicts a change to its
    input instead of the output itself: ``tanh(atanh(x) + net(x))``. Call
    :meth:`zero_residual` after initialisation to start as the identity; the input's full
    resolution detail then passes through untouched, which suits colour and tone translations.
    ``colour_branch=True`` (residual only) adds a per-pixel branch beside the network: a small
    1×1-convolution MLP on the input's own RGB values, its change added to the residual. It
    can hold a global colour curve or channel mix exactly, which the main network, whose
    instance norms remove each image's colour levels, learns only slowly. ``upsample``:
    see :data:`UPSAMPLING`.
    """

    size_multiple: int = 4
    COLOUR_WIDTH = 16

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        norm: str = "instance",
        use_dropout: bool = False,
        n_blocks: int = 9,
        padding_type: str = "reflect",
        residual: bool = False,
        colour_branch: bool = False,
        upsample: str = "transpose",
    ) -> None:
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        _padding(padding_type)  # validate before building anything
        super().__init__()
        self.input_nc, self.output_nc, self.ngf = input_nc, output_nc, ngf
        if residual and input_nc != output_nc:
            raise ValueError("a residual generator needs as many output channels as inputs")
        if colour_branch and not residual:
            raise ValueError("the colour branch needs a residual generator")
        if upsample not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLING)}, not {upsample!r}")
        self.residual = residual
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        w = self.COLOUR_WIDTH
        self.colour = nn.Sequential(
            nn.Conv2d(input_nc, w, 1), nn.LeakyReLU(0.2, True), nn.Conv2d(w, w, 1),
            nn.LeakyReLU(0.2, True), nn.Conv2d(w, output_nc, 1)) if colour_branch else None

        model: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=bias),
            make_norm(ngf),
            nn.ReLU(True),
        ]
        n_down = 2
        for i in range(n_down):
            c = ngf * 2**i
            model += [
                nn.Conv2d(c, c * 2, kernel_size=3, stride=2, padding=1, bias=bias),
                make_norm(c * 2),
                nn.ReLU(True),
            ]
        dim = ngf * 2**n_down
        model += [ResnetBlock(dim, padding_type, norm, use_dropout) for _ in range(n_blocks)]
        for i in range(n_down):
            c = ngf * 2 ** (n_down - i)
            model += [
                nn.ConvTranspose2d(
                    c, c // 2, kernel_size=3, stride=2, padding=1, output_padding=1, bias=bias
                ) if upsample == "transpose" else
                nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                              nn.Conv2d(c, c // 2, kernel_size=3, padding=1, bias=bias)),
                make_norm(c // 2),
                nn.ReLU(True),
            ]
        model += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0),
        ]
        if not residual:
            model.append(nn.Tanh())
        self.model = nn.Sequential(*model)

    # Layers whose outputs CUT's contrastive loss compares (indices into ``model``), after
    # the reference CUT's five: the (padded) input, the two downsampling convolutions, and
    # the first and fifth residual blocks. (The reference's generator downsamples with an
    # antialiasing blur, so its two convolution taps see full and half resolution where
    # these, stride-2 convolutions, see half and quarter: the same layers, coarser patches.)
    NCE_LAYERS = (0, 4, 7, 10, 14)

    def encode(self, x: torch.Tensor, layers: tuple[int, ...] = NCE_LAYERS
               ) -> list[torch.Tensor]:
        """The outputs of ``model``'s layers ``layers`` for input ``x`` (in that order; the
        rest of the network is not run)."""
        if not layers or max(layers) >= len(self.model):
            raise ValueError(f"layers must be indices below {len(self.model)}, not {layers}")
        found, last = [], max(layers)
        for index, layer in enumerate(self.model):
            x = layer(x)
            if index in layers:
                found.append(x)
            if index == last:
                break
        return found

    def zero_residual(self) -> None:
        """Zero the last convolution of a residual generator, so that it starts as identity."""
        if self.residual:
            for last in (self.model[-1], *([self.colour[-1]] if self.colour else [])):
                nn.init.zeros_(last.weight)
                nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.residual:
            x_c = x.clamp(-RESIDUAL_LIMIT, RESIDUAL_LIMIT)
            atanh = 0.5 * torch.log((1 + x_c) / (1 - x_c))  # torch.atanh has no ONNX export
            change = self.model(x)
            if self.colour is not None:
                change = change + self.colour(x)
            return torch.tanh(atanh + change)
        return self.model(x)


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: ``x -> [x, up(submodule(down(x)))]`` (outermost: no concatenation).

    ``outer_nc``/``inner_nc`` are the channels outside/inside this level; ``input_nc``
    defaults to ``outer_nc`` and differs only at the outermost level.
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "instance",
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        if submodule is None and not innermost:
            raise ValueError("a non-innermost U-Net block needs a submodule")
        self.outermost = outermost
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        if input_nc is None:
            input_nc = outer_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)

        model: list[nn.Module]
        if outermost:
            assert submodule is not None
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(
                inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias
            )
            model = [downrelu, downconv, uprelu, upconv, make_norm(outer_nc)]
        else:
            assert submodule is not None
            upconv = nn.ConvTranspose2d(
                inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias
            )
            model = [downrelu, downconv, make_norm(inner_nc), submodule]
            model += [uprelu, upconv, make_norm(outer_nc)]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """U-Net with ``num_downs`` stride-2 levels; a 2**num_downs input reaches 1x1 at the bottom.

    Output is in [-1, 1] (Tanh); the input's spatial size must be a multiple of
    :attr:`size_multiple`.
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "instance",
        use_dropout: bool = False,
    ) -> None:
        if num_downs < 5:
            raise ValueError(f"num_downs must be >= 5, got {num_downs}")
        super().__init__()
        self.num_downs = num_downs
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm=norm, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(
                ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout
            )
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(
            output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm=norm
        )

    @property
    def size_multiple(self) -> int:
        """Spatial size the input must be a multiple of (``2**num_downs``)."""
        return 2**self.num_downs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
