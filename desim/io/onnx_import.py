"""ONNX models as workloads (``desim run -t model.onnx``): the layers the array computes.

The model is read with the ``onnx`` package (``pip install 'desim[onnx]'``), every tensor's shape
is inferred (constants folded, as ``onnx.shape_inference`` does with data propagation), and the
nodes are taken in the graph's order:

- ``Conv`` (2-D, one group, no dilation, batch 1) is a conv layer: its input height and width
  padded as the node pads them (``auto_pad`` too), less the rows and columns past the last
  window, so that desim's output size is ONNX's; ``Gemm`` and ``MatMul`` are GEMMs, a batched
  ``MatMul`` whose second operand has no batch of its own one GEMM of all its rows, else one GEMM
  per matrix of the batch (``name[i]``);
- ``Relu``, ``Clip``, ``Sigmoid``, ``LeakyRelu`` and ``BatchNormalization`` that directly follow a
  layer (its only reader) are fused into it, as compilers do (a batch norm only into a conv);
- what only renames or reshapes data (``Reshape``, ``Flatten``, ``Squeeze``, ``Unsqueeze``,
  ``Identity``, ``Dropout``) and what computes constants (``Constant``, ``ConstantOfShape``,
  ``Shape``) costs nothing;
- every other node is one desim cannot map yet, named with its operator in an error, or, with
  ``skip_unsupported``, left out and listed in one warning. That includes the layers that move
  memory without the array (pooling, element-wise sums, softmax, normalisation), grouped and
  dilated convolutions, and a batch larger than one: issue 13's later parts.

A layer is named after its node (its first output when the node has no name), with the
characters a report's CSV cannot hold (commas, line breaks) replaced by ``_``.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from desim.errors import DesimError, DesimWarning
from desim.limits import MAX_LAYERS
from desim.workload import Layer

FUSED = {"Relu", "Clip", "Sigmoid", "LeakyRelu", "BatchNormalization"}
"""Element-wise operators folded into the layer they directly follow."""
FREE = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Constant", "ConstantOfShape", "Shape"}
"""Operators that move no data: views of a tensor, or constants."""
LAYERS = {"Conv", "Gemm", "MatMul"}


class _Unsupported(Exception):
    """A node desim cannot map, and why."""


def read_onnx(path: str | Path, *, skip_unsupported: bool = False) -> list[Layer]:
    """The layers of an ONNX model; DesimError names the file and the first node desim cannot map
    (with ``skip_unsupported``, one warning lists them all)."""
    layers, unmapped = import_onnx(path)
    if unmapped and not skip_unsupported:
        name, op, why = unmapped[0]
        raise DesimError(
            f"node {name!r} ({op}): desim cannot map {why} yet; --skip-unsupported runs the rest", file=path
        )
    if unmapped:
        by_op: dict[str, list[str]] = defaultdict(list)
        for name, op, _ in unmapped:
            by_op[op].append(name)
        listed = ", ".join(f"{op} x{len(names)} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
                           for op, names in sorted(by_op.items()))  # fmt: skip
        warnings.warn(DesimWarning(f"{path}: skipped what desim cannot map yet: {listed}"), stacklevel=2)
    if not layers:
        raise DesimError("the model has no layer desim maps (Conv, Gemm, MatMul)", file=path)
    return layers


def import_onnx(path: str | Path) -> tuple[list[Layer], list[tuple[str, str, str]]]:
    """An ONNX model's layers (maybe none), and its nodes desim cannot map yet: ``(name, operator, why)``."""
    onnx = _onnx()
    path = Path(path)
    if not path.is_file():
        raise DesimError("no such ONNX model", file=path)
    try:
        model = onnx.load(str(path))
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as error:  # the onnx package raises several kinds for a file it cannot read
        raise DesimError(f"not a readable ONNX model: {error}".splitlines()[0], file=path) from None
    graph = inferred.graph
    if not graph.node:  # protobuf reads an empty file, or another message, as an empty model
        raise DesimError("not a readable ONNX model: it has no graph nodes", file=path)
    shapes = _shapes(graph)
    readers: dict[str, int] = Counter(name for node in graph.node for name in node.input if name)
    producers: dict[str, str] = {}  # a tensor a layer wrote -> that layer's op type
    layers: list[Layer] = []
    unmapped: list[tuple[str, str, str]] = []
    for index, node in enumerate(graph.node):
        name = _name(node, index)
        op = node.op_type
        try:
            if op in LAYERS:
                made = _layers(node, name, shapes)
                if len(layers) + len(made) > MAX_LAYERS:
                    raise DesimError(f"the model would have more than {MAX_LAYERS:,} layers", file=path, key=name)
                layers.extend(made)
                producers[node.output[0]] = op
            elif op in FUSED:
                source = node.input[0] if node.input else ""
                fusable = producers.get(source) == "Conv" if op == "BatchNormalization" else source in producers
                if not (fusable and readers[source] == 1):
                    raise _Unsupported(f"{op} that does not directly follow a layer (the only reader of its output)")
                producers[node.output[0]] = producers[source]
            elif op in FREE:
                if node.input and node.input[0] in producers and readers[node.input[0]] == 1:
                    producers[node.output[0]] = producers[node.input[0]]  # a view of a layer's output
            else:
                raise _Unsupported(f"operator {op}")
        except _Unsupported as why:
            unmapped.append((name, op, str(why)))
    return layers, unmapped


def _onnx() -> Any:
    try:
        import onnx
        import onnx.shape_inference
    except ImportError:
        raise DesimError("reading ONNX models needs the onnx package: pip install 'desim[onnx]'") from None
    return onnx


def _shapes(graph: Any) -> dict[str, list[int | None]]:
    """Every tensor's shape the graph knows (None for a dimension it leaves open)."""
    shapes: dict[str, list[int | None]] = {}
    for value in (*graph.input, *graph.value_info, *graph.output):
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    for tensor in graph.initializer:
        shapes[tensor.name] = list(tensor.dims)
    return shapes


def _name(node: Any, index: int) -> str:
    name = node.name or (node.output[0] if node.output else "") or f"{node.op_type}_{index}"
    return name.replace(",", "_").replace("\n", "_").replace("\r", "_").strip() or f"{node.op_type}_{index}"


def _shape(shapes: dict[str, list[int | None]], tensor: str, what: str) -> list[int]:
    shape = shapes.get(tensor)
    if shape is None or any(d is None or d < 1 for d in shape):
        raise _Unsupported(f"a {what} whose shape ({tensor!r}: {shape}) is not fixed")
    return [int(d) for d in shape]


def _attributes(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _layers(node: Any, name: str, shapes: dict[str, list[int | None]]) -> list[Layer]:
    if node.op_type == "Conv":
        return [_conv(node, name, shapes)]
    if node.op_type == "Gemm":
        return [_gemm(node, name, shapes)]
    return _matmul(node, name, shapes)


def _conv(node: Any, name: str, shapes: dict[str, list[int | None]]) -> Layer:
    x = _shape(shapes, node.input[0], "Conv input")
    w = _shape(shapes, node.input[1], "Conv weight")
    if len(x) != 4 or len(w) != 4:
        raise _Unsupported(f"a {len(x) - 2}-D convolution (desim maps 2-D ones)")
    attrs = _attributes(node)
    batch, channels, height, width = x
    filters, _, kernel_h, kernel_w = w
    if attrs.get("group", 1) != 1:
        raise _Unsupported(f"a grouped convolution (group {attrs['group']})")
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise _Unsupported(f"a dilated convolution (dilations {list(attrs['dilations'])})")
    if batch != 1:
        raise _Unsupported(f"a batch of {batch}")
    stride_h, stride_w = attrs.get("strides", [1, 1])
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pad_h = max(0, (math.ceil(height / stride_h) - 1) * stride_h + kernel_h - height)
        pad_w = max(0, (math.ceil(width / stride_w) - 1) * stride_w + kernel_w - width)
    elif auto_pad == "VALID":
        pad_h = pad_w = 0
    else:
        top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
        pad_h, pad_w = top + bottom, left + right
    # Padded, less what lies past the last window: desim's output size is then ONNX's.
    padded_h, padded_w = height + pad_h, width + pad_w
    if padded_h < kernel_h or padded_w < kernel_w:
        raise _Unsupported(f"a {kernel_h}x{kernel_w} kernel larger than its padded {padded_h}x{padded_w} input")
    used_h = padded_h - (padded_h - kernel_h) % stride_h
    used_w = padded_w - (padded_w - kernel_w) % stride_w
    return Layer(name, used_h, used_w, kernel_h, kernel_w, channels, filters, stride_h, stride_w)


def _gemm(node: Any, name: str, shapes: dict[str, list[int | None]]) -> Layer:
    a = _shape(shapes, node.input[0], "Gemm input")
    b = _shape(shapes, node.input[1], "Gemm weight")
    attrs = _attributes(node)
    m, k = reversed(a) if attrs.get("transA", 0) else a
    k2, n = reversed(b) if attrs.get("transB", 0) else b
    if k != k2:
        raise _Unsupported(f"a Gemm of {m}x{k} by {k2}x{n}")
    return Layer.gemm(name, m, n, k)


def _matmul(node: Any, name: str, shapes: dict[str, list[int | None]]) -> list[Layer]:
    a = _shape(shapes, node.input[0], "MatMul input")
    b = _shape(shapes, node.input[1], "MatMul input")
    a2 = [1, *a] if len(a) == 1 else a  # a vector is one row, or one column
    b2 = [*b, 1] if len(b) == 1 else b
    (m, k), (k2, n) = a2[-2:], b2[-2:]
    if k != k2:
        raise _Unsupported(f"a MatMul of {a} by {b}")
    try:
        batch = np.broadcast_shapes(tuple(a2[:-2]), tuple(b2[:-2]))
    except ValueError:
        raise _Unsupported(f"a MatMul of {a} by {b}") from None
    if math.prod(b2[:-2]) == 1:  # one weight matrix for every row of the batch
        return [Layer.gemm(name, math.prod(batch) * m, n, k)]
    return [Layer.gemm(f"{name}[{i}]", m, n, k) for i in range(math.prod(batch))]
