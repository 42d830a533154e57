"""ONNX Runtime sessions for cyclegan-cli model files: providers, options and validation.

Imports only the standard library, onnxruntime and the metadata module (never torch).
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

import onnxruntime as ort

from cyclegan_cli.cpu import resolve_threads
from cyclegan_cli.errors import ModelError, first_line
from cyclegan_cli.inference.metadata import INPUT_NAME, OUTPUT_NAME, ModelInfo
from cyclegan_cli.inference.providers import (
    Provider,
    captured_output,
    check_started,
    providers_for,
)


def best_providers() -> list[Provider]:
    """The best providers this install has (``--provider auto``), always the CPU last."""
    return providers_for("auto")


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """Full graph optimisation, sequential execution, ``threads`` (default: the free cores,
    :func:`cyclegan_cli.cpu.auto_threads`)."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = resolve_threads(threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only
    return opts


# The rewrite trades arithmetic for memory-bound reshuffles that ONNX Runtime parallelises
# poorly: measured 1.4-1.7x faster than the plain graph at 2 threads (AMD EPYC), 0.87x at 16
# (Intel Xeon). Up to this many intra-op threads it is on by default.
REWRITE_MAX_THREADS = 4


def cpu_rewrite_enabled(threads: int) -> bool:
    """Whether to rewrite the graph for ``threads`` CPU threads: ``CGAN_CPU_REWRITE=1`` forces
    it on, ``0`` off; otherwise on for at most :data:`REWRITE_MAX_THREADS` threads."""
    value = os.environ.get("CGAN_CPU_REWRITE", "auto").strip().lower()
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    return threads <= REWRITE_MAX_THREADS


def _cpu_only(providers: list[Provider]) -> bool:
    names = [p if isinstance(p, str) else p[0] for p in providers]
    return names[:1] == ["CPUExecutionProvider"]


def cpu_optimized_bytes(file: Path) -> bytes | None:
    """The model rewritten by :func:`cpu_graph.optimize_for_cpu`, serialised, or None when
    nothing applies (or the file does not parse: ONNX Runtime then reports why)."""
    import onnx

    from cyclegan_cli.inference.cpu_graph import optimize_for_cpu

    try:
        model = onnx.load(str(file))
    except Exception:  # not ONNX: let ONNX Runtime produce the error message
        return None
    optimized, report = optimize_for_cpu(model)
    return optimized.SerializeToString() if report.changed else None


def make_session(path: str | os.PathLike[str], providers: list[Provider] | None = None,
                 threads: int | None = None, cpu_rewrite: bool | None = None,
                 foreign_ok: bool = False, provider: str = "auto",
                 notes: list[str] | None = None) -> ort.InferenceSession:
    """An inference session for a cyclegan-cli ONNX file, validated with :func:`session_info`.

    It runs on ONNX Runtime's provider list ``providers``, by default the one for ``provider``
    (a name, see :mod:`~cyclegan_cli.inference.providers`); a ProviderError when ``provider``
    is not installed or did not start. With ``auto``, a GPU provider that did not start leaves
    the session on the CPU and a line saying why in ``notes``.

    On the CPU provider with few threads the graph is first rewritten for speed (Winograd 3×3
    convolutions, sub-pixel transposed convolutions; same outputs within ~1e-4): ``cpu_rewrite``
    True/False forces it, None decides by :func:`cpu_rewrite_enabled`. The file itself is never
    changed.

    Raises ModelError naming the file for a missing file, a directory, a file that is not ONNX,
    or an ONNX model without cyclegan-cli metadata (unless ``foreign_ok`` and its shapes fit,
    see :func:`guess_info`) or with the wrong inputs/outputs.
    """
    file = Path(path)
    if not file.exists():
        raise ModelError(f"model file not found: {file}")
    if file.is_dir():
        raise ModelError(f"{file} is a directory; expected a .onnx model file "
                         "(use backend='torch' for a training run directory)")
    chosen = providers or providers_for(provider)
    opts = session_options(threads)
    if cpu_rewrite is None:
        cpu_rewrite = cpu_rewrite_enabled(opts.intra_op_num_threads)
    model: str | bytes = str(file)
    if cpu_rewrite and _cpu_only(chosen):
        model = cpu_optimized_bytes(file) or model
    session, printed = _open(model, opts, chosen, file)
    note = check_started(session, provider, printed)
    if note and notes is not None:
        notes.append(note)
    session_info(session, file, foreign_ok=foreign_ok)
    return session


def _open(model: str | bytes, opts: ort.SessionOptions, providers: list[Provider],
          label: str | os.PathLike[str]) -> tuple[ort.InferenceSession, str]:
    """The session, and what ONNX Runtime printed while making it. When a provider other than
    the CPU fails to start, ONNX Runtime prints why and falls back to the CPU: that text is
    kept out of the user's output and goes into the error when that provider was asked for."""
    gpu = not _cpu_only(providers)
    try:
        with captured_output() if gpu else contextlib.nullcontext(io.StringIO()) as printed:
            session = ort.InferenceSession(model, sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        reason = first_line(exc)
        raise ModelError(f"{label}: not a usable ONNX model ({reason})") from exc
    return session, printed.getvalue()


def derived_session(model: Any, label: str, providers: list[Provider] | None = None,
                    threads: int | None = None, cpu_rewrite: bool | None = None
                    ) -> ort.InferenceSession:
    """A session for an in-memory ``onnx.ModelProto`` derived from a model file (same
    providers, options and CPU rewrite policy as :func:`make_session`)."""
    chosen = providers or best_providers()
    opts = session_options(threads)
    if cpu_rewrite is None:
        cpu_rewrite = cpu_rewrite_enabled(opts.intra_op_num_threads)
    if cpu_rewrite and _cpu_only(chosen):
        from cyclegan_cli.inference.cpu_graph import optimize_for_cpu

        model = optimize_for_cpu(model)[0]
    return _open(model.SerializeToString(), opts, chosen, label)[0]


def session_info(session: ort.InferenceSession, path: str | os.PathLike[str] = "model",
                 foreign_ok: bool = False) -> ModelInfo:
    """The :class:`ModelInfo` stored in the session's model; checks its input and output.

    With ``foreign_ok``, a model without cyclegan-cli metadata is accepted when its shapes fit
    an image generator (see :func:`guess_info`); its info then has ``format == "foreign"``.
    """
    props = session.get_modelmeta().custom_metadata_map
    try:
        info = ModelInfo.from_props(props)
    except (ValueError, TypeError) as exc:
        if foreign_ok and "cyclegan_cli.format" not in props:
            return guess_info(session, path)
        raise ModelError(f"{path}: {exc}") from exc
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    if inputs != [INPUT_NAME] or OUTPUT_NAME not in outputs:
        raise ModelError(f"{path}: expected one input {INPUT_NAME!r} and an output "
                         f"{OUTPUT_NAME!r}, found inputs {inputs} and outputs {outputs}")
    if info.size_multiple < 1:
        raise ModelError(f"{path}: model metadata has invalid size_multiple {info.size_multiple}")
    return info


FOREIGN = "foreign"  # ModelInfo.format of a model without cyclegan-cli metadata


def guess_info(session: ort.InferenceSession, path: str | os.PathLike[str]) -> ModelInfo:
    """Info for an ONNX generator without our metadata: one NCHW 3-channel input with free
    height and width, an output of the same shape, and the smallest size multiple (4 … 256)
    at which it runs. ModelError when it does not fit."""
    import numpy as np

    inputs, outputs = session.get_inputs(), session.get_outputs()
    what = f"{path}: not a cyclegan-cli model (no metadata)"
    if len(inputs) != 1 or not outputs:
        raise ModelError(f"{what}, and it has {len(inputs)} inputs and {len(outputs)} outputs; "
                         "an image generator has one of each. Export it with cgan export")
    shape = inputs[0].shape
    if len(shape) != 4 or shape[1] != 3:
        raise ModelError(f"{what}, and its input {shape} is not N×3×H×W RGB")
    if isinstance(shape[2], int) or isinstance(shape[3], int):
        raise ModelError(f"{what}, and its input size is fixed ({shape[2]}×{shape[3]}); "
                         "export it with dynamic height and width")
    out_name = OUTPUT_NAME if any(o.name == OUTPUT_NAME for o in outputs) else outputs[0].name
    dtype = np.float16 if inputs[0].type == "tensor(float16)" else np.float32
    for multiple in (4, 8, 16, 32, 64, 128, 256):
        side = multiple * (max(1, 32 // multiple) | 1)  # an odd number of multiples
        x = np.zeros((1, 3, side, side), dtype)
        try:
            (y,) = session.run([out_name], {inputs[0].name: x})
        except Exception:  # the network cannot take this size: try a coarser multiple
            continue
        if tuple(np.shape(y)) == x.shape:
            return ModelInfo("AtoB", "A", "B", "unknown", multiple, format=FOREIGN,
                             source=str(path))
    raise ModelError(f"{what}, and its output never has the input's shape (tried sizes that "
                     "are multiples of 4 to 256)")
