"""ONNX Runtime execution providers by name (``--provider``): which this install has, the
provider list a session gets, and the check that the one asked for really runs.

Imports only the standard library, onnxruntime and the errors module (never torch).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

from cyclegan_cli.errors import ModelError, first_line

Provider = str | tuple[str, dict[str, Any]]

CPU = "CPUExecutionProvider"

# Dynamic image sizes: an exhaustive cuDNN search would re-run for every new shape.
CUDA_OPTIONS: dict[str, Any] = {
    "device_id": 0,
    "cudnn_conv_algo_search": "HEURISTIC",
    "arena_extend_strategy": "kSameAsRequested",
    "do_copy_in_default_stream": True,
}

_GPU_SWAP = "pip uninstall onnxruntime, then"  # the ONNX Runtime packages exclude each other


@dataclass(frozen=True)
class ProviderKind:
    """One ``--provider`` choice."""

    name: str  # the --provider value
    ort_names: tuple[str, ...]  # ONNX Runtime's provider ids; the first one installed is used
    label: str  # for messages
    install: str  # how to get it


KINDS: dict[str, ProviderKind] = {k.name: k for k in (
    ProviderKind("cpu", (CPU,), "CPU", "pip install 'cyclegan-cli[cpu]'"),
    ProviderKind("cuda", ("CUDAExecutionProvider",), "CUDA",
                 f"{_GPU_SWAP} pip install 'cyclegan-cli[gpu]' (onnxruntime-gpu with CUDA and "
                 "cuDNN from pip; needs an NVIDIA driver)"),
    ProviderKind("tensorrt", ("TensorrtExecutionProvider",), "TensorRT",
                 f"{_GPU_SWAP} pip install 'cyclegan-cli[gpu]', and NVIDIA TensorRT 10 (its "
                 "libraries on the library path)"),
    ProviderKind("coreml", ("CoreMLExecutionProvider",), "Core ML",
                 "the onnxruntime package for macOS: pip install 'cyclegan-cli[cpu]' on a Mac"),
    ProviderKind("directml", ("DmlExecutionProvider",), "DirectML",
                 f"{_GPU_SWAP} pip install onnxruntime-directml (Windows)"),
    ProviderKind("rocm", ("MIGraphXExecutionProvider", "ROCMExecutionProvider"), "ROCm",
                 f"{_GPU_SWAP} install AMD's ONNX Runtime for ROCm (onnxruntime-migraphx or "
                 "onnxruntime-rocm, from AMD's package index)"),
)}
PROVIDER_NAMES = ("auto", *KINDS)
# What auto tries, best first (the CPU always comes last). TensorRT builds an engine for each
# new image size (minutes) and Core ML does not run every layer of these networks: both are
# used only when asked for.
AUTO_ORDER = ("cuda", "rocm", "directml")


class ProviderError(ModelError):
    """A provider that was asked for is unknown, not installed or did not start."""


def _installed(kind: ProviderKind) -> str | None:
    """The ONNX Runtime id of ``kind`` in this install, or None."""
    available = ort.get_available_providers()
    return next((n for n in kind.ort_names if n in available), None)


def available_providers() -> list[str]:
    """The ``--provider`` names this install has (compiled into its ONNX Runtime; whether a
    GPU is there too shows only when a session starts)."""
    return [name for name, kind in KINDS.items() if _installed(kind)]


def _cache_dir(name: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cyclegan-cli" / name


def _options(ort_name: str) -> dict[str, Any]:
    if ort_name == "CUDAExecutionProvider":
        return dict(CUDA_OPTIONS)
    if ort_name == "TensorrtExecutionProvider":  # engines are slow to build: keep them
        return {"device_id": 0, "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(_cache_dir("tensorrt"))}
    return {}


def providers_for(name: str = "auto") -> list[Provider]:
    """The provider list for a session: ``name``'s provider (with options suited to images of
    varying size), then the CPU for anything it cannot run. ``auto``: the best installed of
    :data:`AUTO_ORDER`, else the CPU alone.

    Raises ProviderError for an unknown name or one this install does not have, saying which
    package brings it.
    """
    if name not in PROVIDER_NAMES:
        raise ProviderError(f"unknown provider {name!r}; use one of {', '.join(PROVIDER_NAMES)}")
    if name == "auto":
        found = [n for k in AUTO_ORDER if (n := _installed(KINDS[k]))]
        chosen = found[:1]
    else:
        kind = KINDS[name]
        ort_name = _installed(kind)
        if ort_name is None:
            have = ", ".join(available_providers()) or "none"
            raise ProviderError(f"the {kind.label} provider is not in this install (it has: "
                                f"{have}); to get it: {kind.install}")
        chosen = [ort_name]
        if name == "tensorrt" and "CUDAExecutionProvider" in ort.get_available_providers():
            chosen.append("CUDAExecutionProvider")  # for what TensorRT cannot take
    if any(n in ("CUDAExecutionProvider", "TensorrtExecutionProvider") for n in chosen):
        preload_cuda_libraries()
    return [*((n, _options(n)) for n in chosen if n != CPU), CPU]


@functools.cache
def preload_cuda_libraries() -> str:
    """Load the CUDA and cuDNN libraries that pip installed with ``onnxruntime-gpu[cuda,cudnn]``
    (ONNX Runtime's ``preload_dlls``; not needed after ``import torch``, which loads its own).
    Once per process; returns what it printed (kept out of the user's output)."""
    if "torch" in sys.modules or not hasattr(ort, "preload_dlls"):
        return ""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(Exception):
        ort.preload_dlls()
    return out.getvalue()


def active_provider(session: Any) -> str:
    """The label of the provider that runs most of ``session`` (its first one)."""
    first = (session.get_providers() or [CPU])[0]
    return next((k.label for k in KINDS.values() if first in k.ort_names), first)


@contextlib.contextmanager
def captured_output() -> Iterator[io.StringIO]:
    """Everything written to stdout and stderr inside the block, Python's and native code's
    alike, into the yielded buffer (filled when the block ends). ONNX Runtime prints why a
    provider failed to start there, then falls back to the CPU: that text must neither reach
    the user's terminal nor stdout (which may be JSON), but it is the reason to report."""
    buffer = io.StringIO()
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = {fd: os.dup(fd) for fd in (1, 2)}
        try:
            for fd in saved:
                os.dup2(sink.fileno(), fd)
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                yield buffer
        finally:
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            buffer.write(sink.read().decode("utf-8", "replace"))


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def start_failure(session: Any, name: str, printed: str = "") -> str | None:
    """Why ``name``'s provider is not running ``session`` (None when it is, or for cpu), from
    what ONNX Runtime ``printed`` while making it. For auto: why the GPU provider it chose
    did not start, if it did not."""
    if name == "auto":
        chosen = next((k.name for k in KINDS.values() if k.name in AUTO_ORDER
                       and _installed(k)), None)
        return start_failure(session, chosen, printed) if chosen else None
    if name == "cpu" or set(KINDS[name].ort_names) & set(session.get_providers()):
        return None
    said = _ANSI.sub("", printed + preload_cuda_libraries())
    for pattern in (r"with error: (.+)", r"(Failed to load \S+: .+)", r"EP Error:? (.+)",
                    r"Failed to create \w+\. (.+)"):
        found = re.search(pattern, said)
        if found:
            return found.group(1).strip()[:200]
    return "no usable device, or its libraries are missing"


def check_started(session: Any, name: str, printed: str = "") -> str | None:
    """ProviderError when ``name`` was asked for but ONNX Runtime fell back to the CPU;
    ``printed`` is what it printed while making the session. For auto the fall-back is
    allowed: the return value is then a note that says why (None when nothing fell back)."""
    reason = start_failure(session, name, printed)
    if reason is None:
        return None
    if name == "auto":
        return f"the GPU provider did not start ({reason}); running on the CPU"
    raise ProviderError(f"the {KINDS[name].label} provider is installed but did not start "
                        f"({reason}); cgan doctor shows what this install has")


def probe(name: str) -> str | None:
    """Start ``name`` on a one-layer convolution and run it: None when it works, else why not
    (for ``cgan doctor``)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.eye(3, dtype=np.float32).reshape(3, 3, 1, 1), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"])], "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    try:
        with captured_output() as printed:
            session = ort.InferenceSession(model.SerializeToString(),
                                           providers=providers_for(name))
        reason = start_failure(session, name, printed.getvalue())
        if reason is not None:
            return f"did not start: {reason}"
        x = np.random.default_rng(0).random((1, 3, 8, 8), dtype=np.float32)
        (y,) = session.run(["y"], {"x": x})
        if not np.allclose(y, x, atol=1e-3):
            return "runs, but gives wrong results"
    except Exception as exc:  # any failure is the answer
        return first_line(exc)
    return None
