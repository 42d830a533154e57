"""Exact graph rewrites that make a generator faster on ONNX Runtime's CPU provider.

fp32 convolution on a CPU runs near the cores' arithmetic peak, so the only large gain left is
doing less arithmetic. Two rewrites, both the same function up to float rounding:

* **Winograd F(4×4, 3×3)** for the 3×3 stride-1 convolutions that dominate a ResNet generator
  (18 of 22 convolutions, ~88 % of the FLOPs): 36 multiplications per 4×4 output tile and
  input channel instead of 144. Each becomes a depthwise 6×6/stride-4 transform, one batched
  MatMul over the 36 tile positions, a small MatMul back to 4×4 tiles and a DepthToSpace.
  Weights are transformed once, in float64, when the session is made.
* **Sub-pixel ConvTranspose**: a stride-2 3×3 transposed convolution (the ResNet upsampling
  layers) as a 2×2 convolution to 4× the channels followed by DepthToSpace; ONNX Runtime's
  ConvTranspose kernel is much slower per FLOP than its Conv.

Only float32 nodes whose weights are initializers are touched, so fp16 and int8 (QDQ) models
pass through unchanged. The file on disk is never modified: :func:`optimize_for_cpu` returns
a new in-memory model. Imports numpy and onnx only (never torch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

# Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (2016), F(4x4, 3x3) with
# interpolation points 0, ±1, ±2 (and infinity).
_BT = np.array([[4, 0, -5, 0, 1, 0],
                [0, -4, -4, 1, 1, 0],
                [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0],
                [0, 2, -1, -2, 1, 0],
                [0, 4, 0, -5, 0, 1]], dtype=np.float64)
_G = np.array([[1 / 4, 0, 0],
               [-1 / 6, -1 / 6, -1 / 6],
               [-1 / 6, 1 / 6, -1 / 6],
               [1 / 24, 1 / 12, 1 / 6],
               [1 / 24, -1 / 12, 1 / 6],
               [0, 0, 1]], dtype=np.float64)
_AT = np.array([[1, 1, 1, 1, 1, 0],
                [0, 1, -1, 2, -2, 0],
                [0, 1, 1, 4, 4, 0],
                [0, 1, -1, 8, -8, 1]], dtype=np.float64)
TILE = 4  # output tile side
PATCH = 6  # input tile side (TILE + 3 - 1)

# Convolutions narrower than this gain too little to pay for the transforms.
MIN_CHANNELS = 32
MIN_OPSET = 13


@dataclass
class RewriteReport:
    """What :func:`optimize_for_cpu` changed."""

    winograd: list[str] = field(default_factory=list)
    subpixel: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.winograd or self.subpixel)


def winograd_weights(weight: np.ndarray) -> np.ndarray:
    """(K, C, 3, 3) kernels → (36, 1, K, C) transformed kernels ``G g Gᵀ`` (float32)."""
    k, c = weight.shape[:2]
    u = np.tensordot(_G, weight.astype(np.float64), axes=([1], [2]))  # (6, K, C, 3)
    u = np.tensordot(u, _G, axes=([3], [1]))  # (6, K, C, 6)
    return u.transpose(0, 3, 1, 2).reshape(PATCH * PATCH, 1, k, c).astype(np.float32)


def input_transform(channels: int) -> np.ndarray:
    """Depthwise kernels (C·36, 1, 6, 6) computing ``Bᵀ d B`` for every 6×6 input patch."""
    kernels = np.einsum("pi,qj->pqij", _BT, _BT).reshape(PATCH * PATCH, 1, PATCH, PATCH)
    return np.tile(kernels, (channels, 1, 1, 1)).astype(np.float32)


def output_transform() -> np.ndarray:
    """(16, 36) matrix taking the 36 products of a tile to its 4×4 outputs ``Aᵀ m A``."""
    return np.einsum("ap,bq->abpq", _AT, _AT).reshape(TILE * TILE, PATCH * PATCH).astype(
        np.float32)


def subpixel_weights(weight: np.ndarray, bias: np.ndarray | None
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """ConvTranspose(k=3, s=2, p=1, output_padding=1) weights (Cin, Cout, 3, 3) → Conv 2×2
    weights (Cout·4, Cin, 2, 2) whose DepthToSpace(2, CRD) output is the same image.

    Output row 2m takes input row m through tap 1; row 2m+1 takes row m through tap 2 and row
    m+1 through tap 0 (same for columns).
    """
    cin, cout = weight.shape[:2]
    taps = {(0, 0): 1, (1, 0): 2, (1, 1): 0}  # (output parity, input offset) -> kernel tap
    out = np.zeros((cout, 2, 2, cin, 2, 2), dtype=np.float32)
    for (a, di), kh in taps.items():
        for (b, dj), kw in taps.items():
            out[:, a, b, :, di, dj] = weight[:, :, kh, kw].T
    bias4 = None if bias is None else np.repeat(bias.astype(np.float32), 4)
    return out.reshape(cout * 4, cin, 2, 2), bias4


def _attrs(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _is_plain(attrs: dict[str, object], allowed: set[str]) -> bool:
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    return set(attrs) <= allowed and auto_pad in (b"NOTSET", "NOTSET")


class _Builder:
    """Adds nodes and initializers with unique names to a graph being rebuilt."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.names = {i.name for i in graph.initializer} | {n for node in graph.node
                                                            for n in (*node.input, *node.output)}
        self.initializers: list[onnx.TensorProto] = []
        self.shared: dict[tuple[str, bytes], str] = {}

    def fresh(self, stem: str) -> str:
        name, i = stem, 0
        while name in self.names:
            i += 1
            name = f"{stem}_{i}"
        self.names.add(name)
        return name

    def const(self, stem: str, value: np.ndarray, share: bool = True) -> str:
        """An initializer, shared between nodes when the same constant is asked for again."""
        if not share:
            name = self.fresh(stem)
            self.initializers.append(numpy_helper.from_array(value, name))
            return name
        key = (str(value.dtype) + str(value.shape), value.tobytes())
        if key not in self.shared:
            name = self.fresh(stem)
            self.initializers.append(numpy_helper.from_array(value, name))
            self.shared[key] = name
        return self.shared[key]

    def ints(self, stem: str, *values: int) -> str:
        return self.const(stem, np.array(values, dtype=np.int64))


def _winograd_nodes(b: _Builder, node: onnx.NodeProto, weight: np.ndarray,
                    bias: np.ndarray | None, pads: list[int]) -> list[onnx.NodeProto]:
    """Nodes computing ``node`` (a 3×3, stride-1 Conv) with Winograd F(4×4, 3×3)."""
    k, c = weight.shape[:2]
    x, y = node.input[0], node.output[0]
    p = b.fresh(f"{node.name or 'conv'}_wino")
    t = lambda s: f"{p}/{s}"  # noqa: E731
    top, left, bottom, right = pads
    nodes = [
        # Every 6x6 patch at stride 4, transformed: (N, C*36, th, tw). Extra zero rows/cols at
        # the bottom/right round the output up to whole tiles; they are sliced off below.
        helper.make_node("Conv", [x, b.const(f"{p}_Bt", input_transform(c))], [t("v")],
                         group=c, kernel_shape=[PATCH, PATCH], strides=[TILE, TILE],
                         pads=[top, left, bottom + TILE - 1, right + TILE - 1]),
        helper.make_node("Shape", [t("v")], [t("vshape")]),
        helper.make_node("Slice", [t("vshape"), b.ints("i0", 0), b.ints("i1", 1)], [t("n")]),
        helper.make_node("Slice", [t("vshape"), b.ints("i2", 2), b.ints("i4", 4)], [t("thw")]),
        helper.make_node("Reshape", [t("v"), b.ints(f"shape_0_{c}_36_m1", 0, c, 36, -1)],
                         [t("v4")]),
        helper.make_node("Transpose", [t("v4")], [t("vt")], perm=[2, 0, 1, 3]),  # (36,N,C,T)
        helper.make_node("MatMul", [b.const(f"{p}_U", winograd_weights(weight), share=False),
                                    t("vt")], [t("m")]),  # (36, N, K, T)
        helper.make_node("Reshape", [t("m"), b.ints("shape_36_m1", 36, -1)], [t("m2")]),
        helper.make_node("MatMul", [b.const("wino_At", output_transform()), t("m2")],
                         [t("y16")]),  # (16, N*K*T)
        helper.make_node("Concat", [b.ints("i16", 16), t("n"), b.ints(f"k{k}", k),
                                    b.ints("im1", -1)], [t("s1")], axis=0),
        helper.make_node("Reshape", [t("y16"), t("s1")], [t("y4")]),  # (16, N, K, T)
        helper.make_node("Transpose", [t("y4")], [t("yt")], perm=[1, 2, 0, 3]),  # (N,K,16,T)
        helper.make_node("Concat", [t("n"), b.ints(f"k{k * 16}", k * 16), t("thw")], [t("s2")],
                         axis=0),
        helper.make_node("Reshape", [t("yt"), t("s2")], [t("yk")]),
        helper.make_node("DepthToSpace", [t("yk")], [t("tiles")], blocksize=TILE, mode="CRD"),
        # Crop to the convolution's true output size: input size + pads - 2.
        helper.make_node("Shape", [x], [t("xshape")]),
        helper.make_node("Slice", [t("xshape"), b.ints("i2", 2), b.ints("i4", 4)], [t("xhw")]),
        helper.make_node("Add", [t("xhw"), b.ints(f"grow_{top + bottom}_{left + right}",
                                                  top + bottom - 2, left + right - 2)],
                         [t("ends")]),
        helper.make_node("Slice", [t("tiles"), b.ints("i00", 0, 0), t("ends"),
                                   b.ints("i23", 2, 3)], [t("crop") if bias is not None else y]),
    ]
    if bias is not None:
        nodes.append(helper.make_node("Add", [t("crop"), b.const(f"{p}_bias",
                                                                 bias.reshape(k, 1, 1))], [y]))
    return nodes


def _subpixel_nodes(b: _Builder, node: onnx.NodeProto, weight: np.ndarray,
                    bias: np.ndarray | None) -> list[onnx.NodeProto]:
    p = b.fresh(f"{node.name or 'convT'}_subpixel")
    w4, b4 = subpixel_weights(weight, bias)
    inputs = [node.input[0], b.const(f"{p}_W", w4, share=False)]
    if b4 is not None:
        inputs.append(b.const(f"{p}_B", b4))
    return [helper.make_node("Conv", inputs, [f"{p}/y4"], kernel_shape=[2, 2],
                             pads=[0, 0, 1, 1]),
            helper.make_node("DepthToSpace", [f"{p}/y4"], [node.output[0]], blocksize=2,
                             mode="CRD")]


def _initializer(values: dict[str, np.ndarray], name: str, ndim: int) -> np.ndarray | None:
    arr = values.get(name)
    return arr if arr is not None and arr.dtype == np.float32 and arr.ndim == ndim else None


def _constant_values(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Initializers, plus Constant node outputs and Identity copies of either (the torch
    exporter shares equal tensors through Identity nodes)."""
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
        elif node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def optimize_for_cpu(model: onnx.ModelProto, *, min_channels: int = MIN_CHANNELS
                     ) -> tuple[onnx.ModelProto, RewriteReport]:
    """A copy of ``model`` with Winograd 3×3 convolutions and sub-pixel transposed
    convolutions (see the module docstring), and a report of the nodes rewritten."""
    report = RewriteReport()
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                default=0)
    if opset < MIN_OPSET:
        return model, report
    graph = model.graph
    values = _constant_values(graph)
    b = _Builder(graph)
    new_nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        attrs = _attrs(node)
        weight = _initializer(values, node.input[1], 4) if len(node.input) > 1 else None
        bias = (_initializer(values, node.input[2], 1)
                if len(node.input) > 2 and node.input[2] else None)
        has_bias_input = len(node.input) > 2 and bool(node.input[2])
        if weight is None or node.domain not in ("", "ai.onnx") or (has_bias_input
                                                                    and bias is None):
            new_nodes.append(node)
            continue
        if (node.op_type == "Conv"
                and _is_plain(attrs, {"kernel_shape", "strides", "pads", "dilations", "group",
                                      "auto_pad"})
                and weight.shape[2:] == (3, 3)
                and list(attrs.get("strides", [1, 1])) == [1, 1]
                and list(attrs.get("dilations", [1, 1])) == [1, 1]
                and attrs.get("group", 1) == 1
                and min(weight.shape[:2]) >= min_channels):
            pads = list(attrs.get("pads", [0, 0, 0, 0]))
            new_nodes.extend(_winograd_nodes(b, node, weight, bias, pads))
            report.winograd.append(node.name or node.output[0])
        elif (node.op_type == "ConvTranspose"
                and _is_plain(attrs, {"kernel_shape", "strides", "pads", "dilations", "group",
                                      "output_padding", "auto_pad"})
                and weight.shape[2:] == (3, 3)
                and list(attrs.get("strides", [1, 1])) == [2, 2]
                and list(attrs.get("pads", [0, 0, 0, 0])) == [1, 1, 1, 1]
                and list(attrs.get("output_padding", [0, 0])) == [1, 1]
                and list(attrs.get("dilations", [1, 1])) == [1, 1]
                and attrs.get("group", 1) == 1):
            new_nodes.extend(_subpixel_nodes(b, node, weight, bias))
            report.subpixel.append(node.name or node.output[0])
        else:
            new_nodes.append(node)
    if not report.changed:
        return model, report
    used = {n for node in new_nodes for n in node.input}
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:]
    out.graph.node.extend(new_nodes)
    kept = [i for i in graph.initializer if i.name in used]
    del out.graph.initializer[:]
    out.graph.initializer.extend(kept + b.initializers)
    del out.graph.value_info[:]  # shapes of rewritten tensors changed; ORT re-infers them
    return out, report
