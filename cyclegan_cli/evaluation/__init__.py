"""Measuring translation quality: paired PSNR/SSIM against ground truth, cycle consistency,
distribution distances (colour sliced-Wasserstein; FID/KID from a local feature model), and
contact sheets. Torch-free: numpy, scikit-image, pillow and onnxruntime."""

from cyclegan_cli.evaluation.metrics import (
    colour_swd,
    frechet_distance,
    gaussian_stats,
    kernel_distance,
    psnr,
    ssim,
)

__all__ = [
    "colour_swd",
    "frechet_distance",
    "gaussian_stats",
    "kernel_distance",
    "psnr",
    "ssim",
]
