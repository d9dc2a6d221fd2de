"""A trained detector as ONE ONNX graph: the base's converted graph with the head's nodes appended, built with
the ``onnx`` package from the numpy head's weights.

The base graph (``FeatureBase.features_graph``) takes raw 0-255 RGB (N, size, size, 3) as ``image`` and names
each output after its tap, so a head is appended by those names: transposed to NCHW (ONNX Runtime cancels the
base's own transpose back), 1x1 and 3x3 depthwise convolutions for the fast head, ROI-align and dense layers for
R-CNN's,
then the decoding of boxes written in ONNX ops in the same order as ``coding.apply_regression`` (so the graph's
boxes are the numpy head's to float rounding). Opset 17: ``RoiAlign`` with half-pixel sampling.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from vision_backend.own_detection.coding import MAX_LOG_SCALE, SPREAD, centres

OPSET = 17


class Builder:
    """Appends named nodes and constants to a graph; every name gets a prefix of its own."""

    def __init__(self, model: onnx.ModelProto, prefix: str = "head"):
        self.model, self.prefix, self.count = model, prefix, 0
        for entry in model.opset_import:
            if entry.domain in ("", "ai.onnx"):
                entry.version = max(entry.version, OPSET)

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{self.prefix}/{hint}_{self.count}"

    def const(self, hint: str, array: Any) -> str:
        name = self.name(hint)
        self.model.graph.initializer.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str = "", **attributes: Any) -> str:
        output = self.name(hint or op_type.lower())
        self.model.graph.node.append(helper.make_node(op_type, inputs, [output], name=output, **attributes))
        return output

    def conv(self, x: str, kernel: np.ndarray, bias: np.ndarray, hint: str, relu: bool = False,
             depthwise: bool = False) -> str:
        """A convolution from a numpy kernel (``layers``' layout): ``(inputs, outputs)`` for a 1x1 one, ``(9,
        channels)`` for a 3x3 depthwise one (zero padded)."""
        outputs = kernel.shape[1]
        if depthwise:
            weights = kernel.T.reshape(outputs, 1, 3, 3)
            y = self.op("Conv", [x, self.const(hint + "_w", weights), self.const(hint + "_b", bias)], hint,
                        pads=[1, 1, 1, 1], group=outputs)
        else:
            weights = kernel.T.reshape(outputs, -1, 1, 1)
            y = self.op("Conv", [x, self.const(hint + "_w", weights), self.const(hint + "_b", bias)], hint)
        return self.op("Relu", [y], hint + "_relu") if relu else y

    def finish(self, outputs: dict[str, tuple[str, list]]) -> bytes:
        """The graph with ``outputs`` (public name -> (tensor, shape)) as its only outputs, checked, as bytes."""
        graph = self.model.graph
        for public, (tensor, _) in outputs.items():
            graph.node.append(helper.make_node("Identity", [tensor], [public], name=f"{self.prefix}/{public}"))
        del graph.output[:]
        graph.output.extend(helper.make_tensor_value_info(public, TensorProto.FLOAT, shape)
                            for public, (_, shape) in outputs.items())
        onnx.checker.check_model(self.model)
        return self.model.SerializeToString()


def base_model(base: Any, taps: tuple[str, ...], size: int) -> onnx.ModelProto:
    """The base's converted graph (raw RGB ``image`` in, one output per tap), loaded to be appended to."""
    return onnx.load(str(base.features_graph(taps, size)))


def decode(b: Builder, deltas: str, sources_cxcy: str, sources_wh: str) -> str:
    """Normalised (dx, dy, dw, dh) on the last axis applied to source boxes given as centres and sizes: xyxy."""
    d = b.op("Mul", [deltas, b.const("spread", SPREAD)])
    axes, two, four, zero = b.const("axes", np.int64([-1])), b.const("two", np.int64([2])), \
        b.const("four", np.int64([4])), b.const("zero", np.int64([0]))
    d_xy = b.op("Slice", [d, zero, two, axes])
    d_wh = b.op("Min", [b.op("Slice", [d, two, four, axes]), b.const("max_log", np.float32(MAX_LOG_SCALE))])
    centre = b.op("Add", [b.op("Mul", [d_xy, sources_wh]), sources_cxcy])
    half = b.op("Mul", [b.op("Mul", [b.op("Exp", [d_wh]), sources_wh]), b.const("half", np.float32(0.5))])
    return b.op("Concat", [b.op("Sub", [centre, half]), b.op("Add", [centre, half])], axis=-1)


def anchor_parts(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centres, sizes) ``(N, 2)`` of xyxy boxes, float32 as the numpy decoding computes them."""
    cx, cy, w, h = centres(boxes)
    return np.stack([cx, cy], 1).astype(np.float32), np.stack([w, h], 1).astype(np.float32)


def fast_graph(base: Any, head: Any) -> bytes:
    """The fast detector as one graph: ``image`` (N, size, size, 3) raw RGB in; ``scores`` (N, anchors, K) and
    ``boxes`` (N, anchors, 4) xyxy in input pixels out."""
    b = Builder(base_model(base, head.taps, head.size))
    logits, deltas = [], []
    for index, tap in enumerate(head.taps):
        w, k = head.weights, f"{index}/"
        h = b.conv(b.op("Transpose", [tap], perm=[0, 3, 1, 2]), w[k + "reduce/kernel"], w[k + "reduce/bias"],
                   f"l{index}_reduce", relu=True)
        if head.context:
            h = b.conv(h, w[k + "depthwise/kernel"], w[k + "depthwise/bias"], f"l{index}_depthwise", relu=True,
                       depthwise=True)
            h = b.conv(h, w[k + "pointwise/kernel"], w[k + "pointwise/bias"], f"l{index}_pointwise", relu=True)
        for name, width, out in (("classes", len(head.classes), logits), ("boxes", 4, deltas)):
            y = b.op("Transpose", [b.conv(h, w[k + name + "/kernel"], w[k + name + "/bias"], f"l{index}_{name}")],
                     perm=[0, 2, 3, 1])
            out.append(b.op("Reshape", [y, b.const("shape", np.int64([0, -1, width]))]))
    scores = b.op("Sigmoid", [b.op("Concat", logits, axis=1)])
    cxcy, wh = anchor_parts(head.anchors())
    boxes = decode(b, b.op("Concat", deltas, axis=1), b.const("anchor_cxcy", cxcy), b.const("anchor_wh", wh))
    count = len(cxcy)
    return b.finish({"scores": (scores, ["batch", count, len(head.classes)]), "boxes": (boxes, ["batch", count, 4])})


def roi_align(b: Builder, maps: str, rois: str, pool: int, scale: float) -> str:
    """ROI-align (Mask R-CNN's ROI pooling without rounding) of NHWC ``maps`` (batch 1) at ``rois`` (R, 4) xyxy
    input pixels: each region's ``pool`` x ``pool`` grid of bilinear averages (2 x 2 samples a bin), flattened
    channel by channel to (R, C * pool²). ``scale`` maps input pixels to cells (1 / stride)."""
    nchw = b.op("Transpose", [maps], perm=[0, 3, 1, 2])
    count = b.op("Slice", [b.op("Shape", [rois]), b.const("zero", np.int64([0])), b.const("one", np.int64([1]))])
    batch = b.op("ConstantOfShape", [count], value=numpy_helper.from_array(np.int64([0])))
    pooled = b.op("RoiAlign", [nchw, rois, batch], output_height=pool, output_width=pool, sampling_ratio=2,
                  spatial_scale=float(scale), mode="avg", coordinate_transformation_mode="half_pixel")
    return b.op("Flatten", [pooled], axis=1)


def roi_align_graph(channels: int, pool: int, scale: float) -> bytes:
    """:func:`roi_align` alone (``maps`` (1, H, W, C) and ``rois`` in, ``pooled`` out): how R-CNN's training
    pools its regions from cached maps, so they are the exported graph's to the bit."""
    model = helper.make_model(helper.make_graph([], "roi_align", [
        helper.make_tensor_value_info("maps", TensorProto.FLOAT, [1, "height", "width", channels]),
        helper.make_tensor_value_info("rois", TensorProto.FLOAT, ["rois", 4])], []),
        opset_imports=[helper.make_opsetid("", OPSET)])
    b = Builder(model, "pool")
    return b.finish({"pooled": (roi_align(b, "maps", "rois", pool, scale), ["rois", channels * pool * pool])})


def rcnn_graph(base: Any, head: Any) -> bytes:
    """R-CNN's per-region network as one graph: ``image`` (1, size, size, 3) raw RGB and ``rois`` (R, 4) xyxy input
    pixels in; ``scores`` (R, K + 1) softmax (background first) and ``boxes`` (R, K, 4) each class's regressed box
    out. The proposals come from selective search outside (OpenCV), NMS after (numpy)."""
    model = base_model(base, (head.tap,), head.size)
    model.graph.input.append(helper.make_tensor_value_info("rois", TensorProto.FLOAT, ["rois", 4]))
    b, w = Builder(model), head.weights
    x = roi_align(b, head.tap, "rois", head.pool, head.cells / head.size)
    def dense(inputs: str, name: str) -> str:
        return b.op("Gemm", [inputs, b.const(name + "_w", w[name + "/kernel"]), b.const(name + "_b", w[name + "/bias"])])

    hidden = b.op("Relu", [dense(x, "hidden")])
    scores = b.op("Softmax", [dense(hidden, "classes")], axis=1)
    deltas = b.op("Reshape", [dense(hidden, "boxes"), b.const("shape", np.int64([-1, len(head.classes), 4]))])
    corners = b.op("Unsqueeze", ["rois", b.const("axis", np.int64([1]))])  # (R, 1, 4): one box for every class
    zero, two, four, last = (b.const(n, np.int64([v])) for n, v in (("zero", 0), ("two", 2), ("four", 4), ("last", -1)))
    x1y1 = b.op("Slice", [corners, zero, two, last])
    x2y2 = b.op("Slice", [corners, two, four, last])
    size = b.op("Sub", [x2y2, x1y1])
    centre = b.op("Add", [x1y1, b.op("Div", [size, b.const("two_f", np.float32(2))])])
    boxes = decode(b, deltas, centre, size)
    k = len(head.classes)
    return b.finish({"scores": (scores, ["rois", k + 1]), "boxes": (boxes, ["rois", k, 4])})
