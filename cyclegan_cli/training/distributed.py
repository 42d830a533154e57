"""Multi-process training under ``torchrun`` (PyTorch's DistributedDataParallel): process
group set-up, the device of each rank, and the few collective helpers the loop needs.

One process per GPU (NCCL), or per CPU process group member (gloo, for tests). Every rank
trains on its own share of each domain, keeps its own image pools and random state, and
averages gradients with the others; rank 0 alone writes checkpoints, samples and logs.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from cyclegan_cli.errors import CganError


@dataclass(frozen=True)
class Dist:
    """This process's place in the group."""

    rank: int
    world: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device_name: str) -> tuple[Dist | None, str]:
    """Join the process group torchrun set up (None when not launched by torchrun), and the
    device this rank uses: ``cuda:LOCAL_RANK`` for CUDA runs, else ``device_name``."""
    if not launched_by_torchrun():
        return None, device_name
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
    if device_name.startswith("cuda:"):
        raise CganError("--device cuda:N cannot be combined with torchrun; each rank uses the "
                        "GPU of its LOCAL_RANK")
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend)
    info = Dist(dist.get_rank(), dist.get_world_size(), local_rank, backend)
    return info, (f"cuda:{local_rank}" if use_cuda else
                  ("cpu" if device_name == "auto" else device_name))


def shutdown(info: Dist | None, finished: bool = False) -> None:
    """Leave the process group. After a finished run the ranks first wait for each other:
    a rank that tears its connections down while another still talks to it can abort that
    one (gloo: "terminate called without an active exception", seen once in about 50 runs)."""
    if info is None or not dist.is_initialized():
        return
    if finished:
        dist.barrier()
    dist.destroy_process_group()


def wrap(net: nn.Module, info: Dist | None, device: torch.device) -> nn.Module:
    """``net`` as a DistributedDataParallel module (gradients averaged over the ranks)."""
    if info is None:
        return net
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(net, device_ids=ids)


def mean_over_ranks(t: torch.Tensor, info: Dist | None) -> torch.Tensor:
    if info is None:
        return t
    out = t.clone()
    dist.all_reduce(out)
    return out / info.world


def all_true(flag: torch.Tensor, info: Dist | None) -> torch.Tensor:
    """A boolean tensor that is True only where it is True on every rank."""
    if info is None:
        return flag
    out = flag.to(torch.int32)
    dist.all_reduce(out, op=dist.ReduceOp.MIN)
    return out.bool()


def from_main(values: list[bool], info: Dist | None, device: torch.device) -> list[bool]:
    """Rank 0's ``values`` on every rank (decisions all ranks must take together)."""
    if info is None:
        return values
    t = torch.tensor([int(v) for v in values], dtype=torch.int32, device=device)
    dist.broadcast(t, 0)
    return [bool(v) for v in t.tolist()]


def gather(obj: Any, info: Dist | None) -> list[Any]:
    """Every rank's ``obj``, in rank order (on every rank)."""
    if info is None:
        return [obj]
    out: list[Any] = [None] * info.world
    dist.all_gather_object(out, obj)
    return out


def weights_digest(module: nn.Module) -> str:
    """A SHA-256 of every parameter: equal digests mean equal weights. (Buffers are left out:
    batch-norm running statistics are each rank's own; rank 0's are saved.)"""
    h = hashlib.sha256()
    for name, t in sorted(module.named_parameters()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def relaunch_with_torchrun(n: int, argv: list[str]) -> int:
    """Run ``cgan`` with ``argv`` (without --gpus) in ``n`` processes under torchrun on this
    machine; returns torchrun's exit code."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={n}", "-m", "cyclegan_cli", *argv]
    print("launching: " + shlex.join(cmd), file=sys.stderr, flush=True)
    return subprocess.call(cmd)


def strip_gpus(argv: list[str]) -> list[str]:
    """``argv`` without its ``--gpus N`` / ``--gpus=N``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--gpus":
            skip = True
        elif not arg.startswith("--gpus="):
            out.append(arg)
    return out
