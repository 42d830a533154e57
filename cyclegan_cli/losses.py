"""Losses as plain functions: adversarial (five modes), gradient penalty, cycle, identity, and
CUT's PatchNCE.

Discriminators return raw scores (logits); each adversarial mode interprets them its own way:

==========  ===============================================  ==================================
mode        discriminator (real term, fake term)              generator
==========  ===============================================  ==================================
lsgan       mean((D(x) - t)^2), mean(D(G)^2)                  mean((D(G) - 1)^2)
vanilla     BCE(D(x), t), BCE(D(G), 0)                        BCE(D(G), 1)    (non-saturating)
minimax     BCE(D(x), t), BCE(D(G), 0)                        -BCE(D(G), 0) = mean log(1-s(D(G)))
wgangp      -mean(D(x)), mean(D(G))  (+ gradient penalty)     -mean(D(G))
hinge       mean(relu(1 - D(x))), mean(relu(1 + D(G)))        -mean(D(G))
==========  ===============================================  ==================================

``t`` is the real-label target, ``1 - label_smoothing`` (one-sided smoothing).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

GAN_MODES = ("lsgan", "vanilla", "minimax", "wgangp", "hinge")


def _check_mode(mode: str) -> None:
    if mode not in GAN_MODES:
        raise ValueError(f"unknown GAN mode {mode!r}; choose one of {', '.join(GAN_MODES)}")


def discriminator_terms(
    mode: str, real: Tensor, fake: Tensor, label_smoothing: float = 0.0
) -> tuple[Tensor, Tensor]:
    """The discriminator's loss on real and on fake scores, as a (real, fake) pair."""
    _check_mode(mode)
    real, fake = real.float(), fake.float()
    target = 1.0 - label_smoothing
    if mode == "lsgan":
        return (real - target).square().mean(), fake.square().mean()
    if mode in ("vanilla", "minimax"):
        return (
            F.binary_cross_entropy_with_logits(real, torch.full_like(real, target)),
            F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)),
        )
    if mode == "wgangp":
        return -real.mean(), fake.mean()
    return F.relu(1.0 - real).mean(), F.relu(1.0 + fake).mean()  # hinge


def discriminator_loss(
    mode: str, real: Tensor, fake: Tensor, label_smoothing: float = 0.0
) -> Tensor:
    """(real term + fake term) / 2, as in the reference implementation."""
    loss_real, loss_fake = discriminator_terms(mode, real, fake, label_smoothing)
    return 0.5 * (loss_real + loss_fake)


def generator_loss(mode: str, fake: Tensor) -> Tensor:
    """The generator's adversarial loss on the discriminator's scores of its fakes."""
    _check_mode(mode)
    fake = fake.float()
    if mode == "lsgan":
        return (fake - 1.0).square().mean()
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if mode == "minimax":
        return -F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    return -fake.mean()  # wgangp, hinge


def gradient_penalty(
    discriminator: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    *,
    target: float = 1.0,
    one_sided: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP penalty ``mean((||grad D(x_hat)||_2 - target)^2)`` on random interpolates.

    ``x_hat = a * real + (1 - a) * fake`` with one ``a ~ U(0, 1)`` per sample. With
    ``one_sided`` only norms above ``target`` are penalised. The graph is kept so the penalty
    can be back-propagated into the discriminator.
    """
    real, fake = real.detach().float(), fake.detach().float()
    alpha = torch.rand(
        (real.shape[0],) + (1,) * (real.dim() - 1),
        device=real.device,
        generator=generator,
    )
    interpolates = (alpha * real + (1.0 - alpha) * fake).requires_grad_(True)
    scores = discriminator(interpolates)
    (grad,) = torch.autograd.grad(
        outputs=scores.float().sum(), inputs=interpolates, create_graph=True
    )
    norm = grad.flatten(1).norm(2, dim=1)
    excess = norm - target
    if one_sided:
        excess = F.relu(excess)
    return excess.square().mean()


def cycle_loss(reconstructed: Tensor, original: Tensor, weight: float) -> Tensor:
    """Cycle consistency: ``weight * mean|F(G(x)) - x|`` (L1)."""
    return weight * F.l1_loss(reconstructed.float(), original.float())


def identity_loss(same: Tensor, original: Tensor, weight: float) -> Tensor:
    """Identity: ``weight * mean|G(y) - y|`` where ``G`` maps into y's domain."""
    return weight * F.l1_loss(same.float(), original.float())


def patch_nce_loss(query: Tensor, key: Tensor, batch: int, temperature: float = 0.07) -> Tensor:
    """PatchNCE (Park et al. 2020), averaged over the patches: each query (a patch of the
    output, N*P x D unit vectors, P patches of each of the ``batch`` images) should pick its
    key (the input's patch at the same position) out of the P - 1 other patches of the same
    image (the negatives), by a softmax over similarities / ``temperature``. Keys carry no
    gradient. A query's similarity to its own key is left out of the negatives (set to
    -10 before the temperature, as the reference does)."""
    query, key = query.float(), key.detach().float()
    dim = query.shape[1]
    positive = (query * key).sum(dim=1, keepdim=True)
    q, k = query.view(batch, -1, dim), key.view(batch, -1, dim)
    patches = q.shape[1]
    negative = torch.bmm(q, k.transpose(1, 2))
    own = torch.eye(patches, dtype=torch.bool, device=query.device)[None]
    negative = negative.masked_fill(own, -10.0).view(-1, patches)
    logits = torch.cat([positive, negative], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long,
                                               device=query.device))
