"""Image-quality and distribution metrics on uint8 images and feature vectors (numpy and
scikit-image; no torch).

* :func:`psnr`, :func:`ssim`: one image against its ground truth (0-255 scale; SSIM from
  scikit-image with a 7×7 uniform window over the three channels, see :func:`ssim`).
* :func:`frechet_distance` of two Gaussians and :func:`kernel_distance` (unbiased MMD² with
  the cubic polynomial kernel, averaged over subsets, as in Bińkowski et al. 2018) — the
  arithmetic of FID/KID, here on the features of a local ONNX model (``cgan eval
  --feature-model``). The standard FID/KID (torch-fidelity's Inception) are in
  :mod:`cyclegan_cli.evaluation.standard`.
* :func:`colour_swd`: sliced Wasserstein distance between the pixel colours of two image sets —
  a cheap, model-free check that translated A looks like real B in colour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from skimage.metrics import structural_similarity


def psnr(output: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB between two uint8 images of the same shape (``inf`` when identical)."""
    if output.shape != target.shape:
        raise ValueError(f"shapes differ: {output.shape} vs {target.shape}")
    mse = float(np.mean((output.astype(np.float64) - target.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def ssim(output: np.ndarray, target: np.ndarray) -> float:
    """Mean structural similarity of two HxWx3 uint8 images (1.0 when identical).

    The variant: scikit-image's ``structural_similarity`` on the RGB channels (averaged), a
    7×7 uniform window (smaller for images under 7 pixels), sample covariances, K1 = 0.01,
    K2 = 0.03, data range 255. Not the 11×11 Gaussian window (σ = 1.5) of Wang et al. 2004 nor
    luma-only SSIM; those give somewhat different figures for the same images."""
    if output.shape != target.shape:
        raise ValueError(f"shapes differ: {output.shape} vs {target.shape}")
    side = min(output.shape[:2])
    window = min(7, side if side % 2 else side - 1)
    if window < 3:
        raise ValueError(f"images of {output.shape[1]}x{output.shape[0]} are too small for SSIM")
    return float(structural_similarity(output, target, channel_axis=2, data_range=255,
                                       win_size=window))


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of N x D features (float64; needs N >= 2)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError("need at least 2 feature vectors (N x D)")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
    """‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½) — the Fréchet distance of two Gaussians."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    # Tr (Σ1 Σ2)^½ is the sum of the square roots of the eigenvalues of Σ1 Σ2, which are real
    # and >= 0 for covariance matrices (rounding can leave tiny imaginary / negative parts).
    eig = np.linalg.eigvals(sigma1 @ sigma2)
    trace_sqrt = float(np.sqrt(np.clip(eig.real, 0.0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)


def kernel_distance(x: np.ndarray, y: np.ndarray, subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """(mean, std) over subsets of the unbiased MMD² between feature sets ``x`` and ``y`` with
    the kernel k(a, b) = (a·b / d + 1)³ (subset settings as torch-fidelity's KID)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    m = min(len(x), len(y), subset_size)
    if m < 2:
        raise ValueError("KID needs at least 2 feature vectors on each side")
    d = x.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        kxx, kyy, kxy = ((a @ a.T / d + 1) ** 3, (b @ b.T / d + 1) ** 3, (a @ b.T / d + 1) ** 3)
        off = m * (m - 1)
        values.append((kxx.sum() - np.trace(kxx)) / off + (kyy.sum() - np.trace(kyy)) / off
                      - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


def colour_swd(images_a: Sequence[np.ndarray], images_b: Sequence[np.ndarray],
               samples: int = 20_000, projections: int = 64, seed: int = 0) -> float:
    """Sliced Wasserstein-1 distance (0-255 scale) between the RGB colours of two image sets,
    from ``samples`` random pixels of each and ``projections`` random directions."""
    rng = np.random.default_rng(seed)

    def pixels(images: Sequence[np.ndarray]) -> np.ndarray:
        flat = np.concatenate([img[..., :3].reshape(-1, 3) for img in images])
        return flat[rng.integers(0, len(flat), samples)].astype(np.float64)

    pa, pb = pixels(images_a), pixels(images_b)
    dirs = rng.normal(size=(projections, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    qa, qb = np.sort(pa @ dirs.T, axis=0), np.sort(pb @ dirs.T, axis=0)
    return float(np.abs(qa - qb).mean())
