"""Device and precision selection; CUDA training checks that skip where no GPU is present."""

from __future__ import annotations

import pytest
import torch

from cyclegan_cli.config import TrainConfig
from cyclegan_cli.errors import CganError
from cyclegan_cli.training.device import resolve_device, resolve_precision
from cyclegan_cli.training.trainer import Trainer

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_auto_picks_an_available_device():
    device = resolve_device("auto")
    expected = "cuda" if torch.cuda.is_available() else device.type
    assert device.type == expected and device.type in ("cuda", "mps", "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_missing_cuda_is_a_clear_error():
    with pytest.raises(CganError, match="no CUDA GPU"):
        resolve_device("cuda")


def test_bad_device_and_precision_names():
    with pytest.raises(CganError, match="unknown device"):
        resolve_device("tpu:7")
    with pytest.raises(CganError, match="needs a GPU"):
        resolve_precision("fp16", torch.device("cpu"))
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"


def _run(precision: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    cfg = TrainConfig(netG="resnet_6blocks", ngf=16, ndf=16, seed=0, pool_size=0)
    trainer = Trainer(cfg, device, precision)
    gen = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(3):
        a = (torch.rand(2, 3, 64, 64, generator=gen) * 2 - 1).to(device)
        b = (torch.rand(2, 3, 64, 64, generator=gen) * 2 - 1).to(device)
        losses.append(trainer.train_step(a, b))
    probe = (torch.rand(1, 3, 64, 64, generator=gen) * 2 - 1).to(device)
    with torch.no_grad():
        return torch.stack(losses).cpu(), trainer.model.G_AB(probe).float().cpu()


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_mixed_precision_matches_fp32(precision):
    device = torch.device("cuda")
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    (l32, o32), (lmp, omp) = _run("fp32", device), _run(precision, device)
    assert torch.isfinite(lmp).all()
    assert torch.allclose(lmp, l32, rtol=0.05, atol=0.02), (lmp, l32)
    assert (omp - o32).abs().mean() < 0.03


@pytest.mark.gpu
@needs_cuda
def test_cuda_and_cpu_agree_in_fp32():
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    (lc, oc), (lg, og) = _run("fp32", torch.device("cpu")), _run("fp32", torch.device("cuda"))
    assert torch.allclose(lg, lc, rtol=1e-3, atol=1e-3)
    assert (og - oc).abs().max() < 1e-2
