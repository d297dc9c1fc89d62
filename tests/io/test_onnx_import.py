"""ONNX models in: the layers a graph gives, against independent counts from the graph itself.

Small models are built here with ``onnx.helper``; the real one is the ResNet-50 the ``onnx`` wheel
ships in its backend test data (weights as ``ConstantOfShape``, so the file is small).
"""

from __future__ import annotations

import builtins
import math
import os
import warnings

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from helpers import ROOT
from onnx import TensorProto, helper, numpy_helper

from desim import DesimError
from desim.cli import main
from desim.io.onnx_import import read_onnx
from desim.io.topology import read_topology

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def save(tmp_path, nodes, inputs, outputs, weights=(), name="model.onnx"):
    """A model of ``nodes`` with float inputs/outputs ``{name: shape}`` and float ``weights``."""
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n, shape in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n, shape in outputs.items()],
        [numpy_helper.from_array(np.zeros(shape, dtype=np.float32), n) for n, shape in weights],
    )
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def independent_macs(path) -> int:
    """MACs of every Conv, Gemm and MatMul from the shapes ONNX infers (output size x reduction)."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)), data_prop=True)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in (*model.graph.input, *model.graph.value_info, *model.graph.output)
    }
    shapes.update({t.name: list(t.dims) for t in model.graph.initializer})
    total = 0
    for node in model.graph.node:
        out = shapes[node.output[0]]
        if node.op_type == "Conv":
            weight = shapes[node.input[1]]
            total += math.prod(out) * math.prod(weight[1:])  # each output: (C / groups) x kH x kW
        elif node.op_type == "Gemm":
            a = shapes[node.input[0]]
            trans = any(x.name == "transA" and x.i for x in node.attribute)
            total += math.prod(out) * (a[0] if trans else a[1])
        elif node.op_type == "MatMul":
            total += math.prod(out) * shapes[node.input[0]][-1]
    return total


def test_conv_gemm_and_matmul_layers(tmp_path):
    """Conv 3->8, 7x7, stride 2, pads 3 on 32x32 (ONNX: 16x16 out) with BN and Relu fused; a
    Gemm 8*16*16 -> 10; MatMul of a 4x5x6 batch by one 6x7 matrix, and by a 4x6x3 batch."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], "conv1", strides=[2, 2], pads=[3, 3, 3, 3]),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"], "bn1"),
        helper.make_node("Relu", ["n"], ["r"], "relu1"),
        helper.make_node("Flatten", ["r"], ["f"], "flat"),
        helper.make_node("Gemm", ["f", "g"], ["y"], "fc", transB=1),
        helper.make_node("MatMul", ["p", "q"], ["z"], "proj"),
        helper.make_node("MatMul", ["p", "t"], ["u"], "scores"),
    ]
    weights = [("w", [8, 3, 7, 7]), ("s", [8]), ("b", [8]), ("m", [8]), ("v", [8]), ("g", [10, 2048]), ("q", [6, 7])]
    inputs = {"x": [1, 3, 32, 32], "p": [4, 5, 6], "t": [4, 6, 3]}
    path = save(tmp_path, nodes, inputs, {"y": [1, 10], "z": [4, 5, 7], "u": [4, 5, 3]}, weights)
    layers = read_onnx(path)
    assert [layer.name for layer in layers] == ["conv1", "fc", "proj", *(f"scores[{i}]" for i in range(4))]
    conv = layers[0]
    # Padded 38x38, less the one row and column past the last window: (37 - 7) / 2 + 1 = 16.
    assert (conv.ifmap_height, conv.ifmap_width, conv.filter_height, conv.channels) == (37, 37, 7, 3)
    assert conv.num_filters == 8
    assert (conv.ofmap_height, conv.ofmap_width, conv.stride_height) == (16, 16, 2)
    assert (layers[1].m, layers[1].n, layers[1].k) == (1, 10, 2048)
    assert (layers[2].m, layers[2].n, layers[2].k) == (20, 7, 6)  # the weights are shared by the batch
    assert {(layer.m, layer.n, layer.k) for layer in layers[3:]} == {(5, 3, 6)}
    assert sum(layer.macs for layer in layers) == independent_macs(path)


@pytest.mark.parametrize(
    ("auto_pad", "out"),
    [("SAME_UPPER", 4), ("VALID", 3)],
)
def test_auto_pad(tmp_path, auto_pad, out):
    """3x3, stride 2 on 7x7: SAME gives ceil(7 / 2) = 4, VALID (7 - 3) / 2 + 1 = 3."""
    node = helper.make_node("Conv", ["x", "w"], ["y"], "c", strides=[2, 2], auto_pad=auto_pad)
    path = save(tmp_path, [node], {"x": [1, 2, 7, 7]}, {"y": [1, 4, out, out]}, [("w", [4, 2, 3, 3])])
    (layer,) = read_onnx(path)
    assert (layer.ofmap_height, layer.ofmap_width) == (out, out)
    assert layer.macs == independent_macs(path)


@pytest.mark.parametrize(
    ("node", "weight", "expected"),
    [
        (helper.make_node("Conv", ["x", "w"], ["y"], "grouped", group=2), [4, 1, 3, 3], "grouped convolution"),
        (helper.make_node("Conv", ["x", "w"], ["y"], "dilated", dilations=[2, 2]), [4, 2, 3, 3], "dilated convolution"),
        (helper.make_node("MaxPool", ["x"], ["y"], "pool", kernel_shape=[2, 2]), None, "operator MaxPool"),
        (helper.make_node("Relu", ["x"], ["y"], "act"), None, "Relu that does not directly follow a layer"),
    ],
    ids=["grouped", "dilated", "pooling", "relu-alone"],
)
def test_what_cannot_be_mapped_yet_is_named(tmp_path, node, weight, expected):
    weights = [("w", weight)] if weight else []
    path = save(tmp_path, [node], {"x": [1, 2, 8, 8]}, {"y": [1, 2, 8, 8]}, weights)
    with pytest.raises(DesimError) as error:
        read_onnx(path)
    message = str(error.value)
    assert f"node {node.name!r} ({node.op_type})" in message and expected in message and str(path) in message


def test_a_skip_is_listed_and_the_rest_runs(tmp_path):
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], "conv"),
        helper.make_node("MaxPool", ["c"], ["p"], "pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p", "w2"], ["y"], "conv2"),
    ]
    weights = [("w", [4, 2, 3, 3]), ("w2", [4, 4, 1, 1])]
    path = save(tmp_path, nodes, {"x": [1, 2, 10, 10]}, {"y": [1, 4, 4, 4]}, weights)
    with pytest.warns(UserWarning, match=r"skipped what desim cannot map yet: MaxPool x1 \(pool\)"):
        layers = read_onnx(path, skip_unsupported=True)
    assert [layer.name for layer in layers] == ["conv", "conv2"]
    # The command line: exit 2 naming the node, or a run with --skip-unsupported.
    stopped = CliRunner().invoke(main, ["run", "-t", str(path), "-p", str(tmp_path / "out"), "-q"])
    assert stopped.exit_code == 2 and "node 'pool' (MaxPool)" in stopped.stderr
    assert not (tmp_path / "out").exists()
    ran = CliRunner().invoke(main, ["run", "-t", str(path), "-p", str(tmp_path / "out"), "-q", "--skip-unsupported"])
    assert ran.exit_code == 0, ran.stderr
    assert "skipped what desim cannot map yet: MaxPool x1 (pool)" in ran.stderr
    summary = next((tmp_path / "out").glob("*/SUMMARY.json")).read_text()
    assert '"input_type": "onnx"' in summary


def test_bad_inputs_say_what_is_wrong(tmp_path, monkeypatch):
    garbage = tmp_path / "bad.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(DesimError, match="not a readable ONNX model"):
        read_onnx(garbage)
    with pytest.raises(DesimError, match="no such ONNX model"):
        read_onnx(tmp_path / "missing.onnx")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(DesimError, match="not a readable ONNX model: it has no graph nodes"):
        read_onnx(empty)
    csv = ROOT / "topologies" / "conv" / "test.csv"
    result = CliRunner().invoke(main, ["run", "-t", str(csv), "-p", str(tmp_path / "o"), "--skip-unsupported"])
    assert result.exit_code == 2 and "--skip-unsupported is for ONNX models" in result.stderr
    real_import = builtins.__import__

    def without_onnx(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_onnx)
    with pytest.raises(DesimError, match=r"needs the onnx package: pip install 'desim\[onnx\]'"):
        read_onnx(garbage)


def test_resnet50_from_the_onnx_wheel():
    """The wheel's ResNet-50 against topologies/conv/resnet50.csv: the same 53 convs and fc, the same
    kernel, reduction (K) and filters (N) layer by layer. They differ where the CSV is unpadded (its 7x7 and 3x3 convs,
    whose padding ONNX states), and in where each stage's first block strides: the CSV in its first
    1x1 conv (ResNet v1), the wheel's model in its 3x3 (v1.5). MACs equal the graph's own count."""
    path = os.path.join(LIGHT, "light_resnet50.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pooling, sums and softmax are not layers yet
        layers = read_onnx(path, skip_unsupported=True)
    csv = read_topology(ROOT / "topologies" / "conv" / "resnet50.csv")
    assert len(layers) == len(csv) == 54
    for ours, theirs in zip(layers, csv, strict=True):  # the fc: the CSV's 1x1 conv, a GEMM here
        assert (ours.filter_height, ours.k, ours.n) == (theirs.filter_height, theirs.k, theirs.n), (ours, theirs)
    assert sum(layer.macs for layer in layers) == independent_macs(path)
    strided = [(ours.filter_height, theirs.filter_height) for ours, theirs in zip(layers, csv, strict=True)
               if ours.stride_height != theirs.stride_height]  # fmt: skip
    assert strided == [(1, 1), (3, 3)] * 3  # stages 3-5: the CSV's 1x1 strides, the wheel's 3x3


def test_export_writes_a_topology_that_reads_back_the_same(tmp_path):
    """desim topology MODEL -o CSV: the layers read back from the CSV are the model's, and what
    desim cannot map yet is listed beside it; the model itself is never replaced."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], "conv", strides=[2, 1], pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["c"], ["p"], "pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], "flat"),
        helper.make_node("Gemm", ["f", "g"], ["y"], "fc", transB=1),
    ]
    weights = [("w", [4, 2, 3, 3]), ("g", [5, 4 * 2 * 5])]
    model = save(tmp_path, nodes, {"x": [1, 2, 8, 10]}, {"y": [1, 5]}, weights)
    csv = tmp_path / "out" / "model.csv"
    result = CliRunner().invoke(main, ["topology", str(model), "-o", str(csv)])
    assert result.exit_code == 0, result.stderr
    with pytest.warns(UserWarning, match="MaxPool"):
        expected = read_onnx(model, skip_unsupported=True)
    assert read_topology(csv) == expected
    assert csv.read_text().splitlines()[0].endswith("Strides, Stride Width,")  # strides 2 and 1
    listed = (tmp_path / "out" / "model.unmapped.txt").read_text().splitlines()
    assert listed == ["node, operator, why", "pool, MaxPool, operator MaxPool"]
    before = model.read_bytes()
    refused = CliRunner().invoke(main, ["topology", str(model), "-o", str(model)])
    assert refused.exit_code == 2 and "refusing to replace the input file" in refused.stderr
    assert model.read_bytes() == before
