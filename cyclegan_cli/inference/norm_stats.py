"""Instance-norm statistics taken from one image and used for another.

A CycleGAN generator normalises every feature map with the mean and variance of the image it
is given. A tile of a large image, or one frame of a video, therefore gets statistics of its
own, and neighbouring tiles (or consecutive frames) come out in slightly different tones. The
cure is to run the generator twice from one model:

* a **collect** pass that returns, for every instance norm, the per-channel mean and variance
  of its input (on the whole image, downscaled if need be), and
* an **apply** pass that normalises with statistics given as inputs instead of its own.

Both are derived from an ONNX file at load time (the file is unchanged); the torch backend does
the same with forward hooks. Imports numpy, onnx and onnxruntime (never torch).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

Stats = list[np.ndarray]  # [mean_0, var_0, mean_1, var_1, ...], each (1 or N, C, 1, 1) float32


class NormStats(Protocol):
    """What a backend offers for shared normalisation statistics."""

    def collect(self, batch: np.ndarray) -> Stats:
        """Per-norm (mean, var) of ``batch`` (NCHW float32 in [-1, 1]), averaged over N."""
        ...

    def apply(self, batch: np.ndarray, stats: Stats) -> np.ndarray:
        """The generator's output for ``batch`` with every instance norm using ``stats``."""
        ...


def instance_norms(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The model's InstanceNormalization nodes, in graph order."""
    return [n for n in model.graph.node
            if n.op_type == "InstanceNormalization" and n.domain in ("", "ai.onnx")]


def _epsilon(node: onnx.NodeProto) -> float:
    for a in node.attribute:
        if a.name == "epsilon":
            return float(a.f)
    return 1e-5


def _stat_names(i: int) -> tuple[str, str]:
    return f"norm{i}_mean", f"norm{i}_var"


def collect_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose outputs are each instance norm's input mean and variance
    (shape (N, C, 1, 1)), ``norm<i>_mean`` / ``norm<i>_var``, and nothing else (what follows
    the last norm is left out).

    Every instance norm is spelled out with the statistics it outputs (mean, centred input,
    variance, then the scaling), so each statistic is computed before the network goes on and
    the feature map can be freed: with the statistics computed beside the original norms,
    ONNX Runtime kept every norm's input alive (about 3 KB a pixel for a ResNet-9 instead of
    about 0.5 KB).
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    opset = _opset(model)
    if opset >= 18:  # ReduceMean takes its axes as an input from opset 18 on
        out.graph.initializer.append(numpy_helper.from_array(
            np.array([2, 3], dtype=np.int64), "norm_stats_axes"))
    shape = numpy_helper.from_array(np.array([-1, 1, 1], dtype=np.int64), "norm_stats_c11")
    out.graph.initializer.append(shape)

    def reduce_mean(x: str, y: str) -> onnx.NodeProto:
        if opset >= 18:
            return helper.make_node("ReduceMean", [x, "norm_stats_axes"], [y], keepdims=1)
        return helper.make_node("ReduceMean", [x], [y], axes=[2, 3], keepdims=1)

    norms = {n.output[0]: i for i, n in enumerate(instance_norms(model))}
    nodes: list[onnx.NodeProto] = []
    for node in model.graph.node:
        i = norms.get(node.output[0]) if node.op_type == "InstanceNormalization" else None
        if i is None:
            nodes.append(node)
            continue
        mean, var = _stat_names(i)
        x, scale, bias = node.input[:3]
        p = f"norm{i}_"
        eps = numpy_helper.from_array(np.array(_epsilon(node), dtype=np.float32), p + "eps")
        out.graph.initializer.append(eps)
        nodes += [reduce_mean(x, mean),
                  helper.make_node("Sub", [x, mean], [p + "centred"]),
                  helper.make_node("Mul", [p + "centred", p + "centred"], [p + "sq"]),
                  reduce_mean(p + "sq", var),
                  helper.make_node("Add", [var, eps.name], [p + "v_eps"]),
                  helper.make_node("Sqrt", [p + "v_eps"], [p + "std"]),
                  helper.make_node("Reshape", [scale, shape.name], [p + "scale"]),
                  helper.make_node("Div", [p + "scale", p + "std"], [p + "gain"]),
                  helper.make_node("Reshape", [bias, shape.name], [p + "bias"]),
                  helper.make_node("Mul", [p + "centred", p + "gain"], [p + "scaled"]),
                  helper.make_node("Add", [p + "scaled", p + "bias"], [node.output[0]])]
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    del out.graph.output[:]
    for i in range(len(norms)):
        for name in _stat_names(i):
            out.graph.output.append(helper.make_tensor_value_info(
                name, TensorProto.FLOAT, ["N", f"C{i}", 1, 1]))
    return _prune(out)


def _prune(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop the nodes no output needs (ONNX Runtime would run them all)."""
    needed = {o.name for o in model.graph.output}
    kept: list[onnx.NodeProto] = []
    for node in reversed(model.graph.node):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(node.input)
    del model.graph.node[:]
    model.graph.node.extend(reversed(kept))
    inits = [t for t in model.graph.initializer if t.name in needed]
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)
    return model


def apply_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose instance norms use inputs ``norm<i>_mean`` / ``norm<i>_var``
    (shape (1 or N, C, 1, 1)) instead of the statistics of their own input."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    norms = {n.output[0]: (i, n) for i, n in enumerate(instance_norms(model))}
    shape = numpy_helper.from_array(np.array([-1, 1, 1], dtype=np.int64), "norm_stats_c11")
    nodes: list[onnx.NodeProto] = []
    for node in model.graph.node:
        if node.output[0] not in norms or node.op_type != "InstanceNormalization":
            nodes.append(node)
            continue
        i, _ = norms[node.output[0]]
        mean, var = _stat_names(i)
        x, scale, bias = node.input[:3]
        p = f"norm{i}_"
        eps = numpy_helper.from_array(np.array(_epsilon(node), dtype=np.float32), p + "eps")
        out.graph.initializer.append(eps)
        nodes.extend([
            helper.make_node("Add", [var, eps.name], [p + "v_eps"]),
            helper.make_node("Sqrt", [p + "v_eps"], [p + "std"]),
            helper.make_node("Reshape", [scale, shape.name], [p + "scale"]),
            helper.make_node("Div", [p + "scale", p + "std"], [p + "gain"]),  # (n, C, 1, 1)
            helper.make_node("Reshape", [bias, shape.name], [p + "bias"]),
            helper.make_node("Sub", [x, mean], [p + "centred"]),
            helper.make_node("Mul", [p + "centred", p + "gain"], [p + "scaled"]),
            helper.make_node("Add", [p + "scaled", p + "bias"], [node.output[0]]),
        ])
        for name in (mean, var):
            out.graph.input.append(helper.make_tensor_value_info(
                name, TensorProto.FLOAT, ["n", f"C{i}", 1, 1]))
    out.graph.initializer.append(shape)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    return out


def _opset(model: onnx.ModelProto) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
               default=0)


def average(stats: Sequence[Stats], weights: Sequence[float] | None = None) -> Stats:
    """Pool several images' statistics (law of total variance), e.g. over video frames."""
    w = np.asarray(weights if weights is not None else [1.0] * len(stats), dtype=np.float64)
    w = w / w.sum()
    pooled: Stats = []
    for k in range(0, len(stats[0]), 2):
        means = np.stack([s[k].astype(np.float64) for s in stats])
        vars_ = np.stack([s[k + 1].astype(np.float64) for s in stats])
        wk = w.reshape(-1, *([1] * (means.ndim - 1)))
        mean = (wk * means).sum(0)
        var = (wk * (vars_ + (means - mean) ** 2)).sum(0)
        pooled += [mean.astype(np.float32), var.astype(np.float32)]
    return pooled


def batch_mean(stats: Stats) -> Stats:
    """One set of statistics (batch 1) from a batch's per-image ones."""
    return average([[s[i:i + 1] for s in stats] for i in range(stats[0].shape[0])])


# A statistics pass runs once on a whole image: give its working memory back afterwards.
_SHRINK = ort.RunOptions()
_SHRINK.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")


class OnnxNormStats:
    """:class:`NormStats` for an ONNX model file; the two derived sessions are made on first
    use (they cost the memory of two more copies of the model)."""

    def __init__(self, path: str | os.PathLike[str], providers: list[Any] | None = None,
                 threads: int | None = None, cpu_rewrite: bool | None = None) -> None:
        self.path = Path(path)
        self.options = {"providers": providers, "threads": threads, "cpu_rewrite": cpu_rewrite}
        self._collect: Any = None
        self._apply: Any = None
        self._count: int | None = None

    def _load(self) -> None:
        from cyclegan_cli.inference.session import derived_session

        model = onnx.load(str(self.path))
        float32 = model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
        self._count = len(instance_norms(model)) if float32 else 0  # fp16 files: not offered
        if not self._count:
            return
        self._collect = derived_session(collect_model(model), str(self.path), **self.options)
        self._apply = derived_session(apply_model(model), str(self.path), **self.options)

    @property
    def count(self) -> int:
        """Number of instance norms in the model."""
        if self._count is None:
            self._load()
        return int(self._count or 0)

    @functools.cached_property
    def channels(self) -> int:
        """Channels of the first normalised feature map (the widest at full resolution)."""
        model = onnx.load(str(self.path), load_external_data=False)
        norms = instance_norms(model)
        sizes = {t.name: t.dims for t in model.graph.initializer}
        return int(np.prod(sizes.get(norms[0].input[1], [64]))) if norms else 0

    def collect(self, batch: np.ndarray) -> Stats:
        if self._collect is None:
            self._load()
        names = [n for i in range(self.count) for n in _stat_names(i)]
        return batch_mean(self._collect.run(names, {"input": batch}, _SHRINK))

    def apply(self, batch: np.ndarray, stats: Stats) -> np.ndarray:
        if self._apply is None:
            self._load()
        feeds = {"input": batch}
        for i in range(self.count):
            mean, var = _stat_names(i)
            feeds[mean], feeds[var] = stats[2 * i], stats[2 * i + 1]
        (y,) = self._apply.run(["output"], feeds)
        return np.asarray(y, dtype=np.float32)
