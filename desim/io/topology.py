"""SCALE-Sim topology CSVs: conv layers or GEMMs, one per row after a header row (an ONNX model,
``-i onnx`` or a ``.onnx`` file, is read by :mod:`desim.io.onnx_import`).

Conv rows: ``name, IFMAP height, IFMAP width, filter height, filter width, channels, filters,
stride[, stride width]`` (heights and widths already padded). GEMM rows (``-i gemm``):
``name, M, N, K``. Rows may end with a comma; blank lines are skipped. A conv layer whose name
contains ``DP`` is depthwise, and, as in SCALE-Sim, becomes one single-channel layer per channel,
named ``<name>Channel_<i>``. Columns beyond these are named in one warning and ignored.

Numbers are plain decimal integers up to ``MAX_OPERAND_ELEMENTS`` (no ``1_0``), and a workload
holds at most ``MAX_LAYERS`` layers once depthwise ones are split: both are checked row by row,
before any layer is built, so a huge depthwise row fails at once with its line.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from desim.errors import DesimError, DesimWarning, read_text
from desim.limits import MAX_LAYERS, MAX_OPERAND_ELEMENTS
from desim.params import brief, parse_int
from desim.workload import Layer

CONV_FIELDS = (
    "IFMAP Height",
    "IFMAP Width",
    "Filter Height",
    "Filter Width",
    "Channels",
    "Num Filter",
    "Strides",
)
GEMM_FIELDS = ("M", "N", "K")
FORMATS = ("conv", "gemm", "onnx")
"""What a topology file holds: SCALE-Sim's conv rows or GEMM rows, or an ONNX model."""


def topology_format(path: str | Path, fmt: str | None) -> str:
    """The format to read ``path`` as: ``fmt`` if given, else ``onnx`` for a ``.onnx`` file and ``conv`` otherwise."""
    if fmt is None:
        return "onnx" if Path(path).suffix.lower() == ".onnx" else "conv"
    if fmt not in FORMATS:
        raise DesimError(f"unknown topology format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return fmt


def read_topology(path: str | Path, fmt: str | None = None, *, skip_unsupported: bool = False) -> list[Layer]:
    """The layers of a topology file, checked; DesimError names the file and line of a bad row (the
    node, in an ONNX model, whose operator desim cannot map, unless ``skip_unsupported``)."""
    fmt = topology_format(path, fmt)
    if fmt == "onnx":
        from desim.io.onnx_import import read_onnx

        return read_onnx(path, skip_unsupported=skip_unsupported)
    fields = CONV_FIELDS if fmt == "conv" else GEMM_FIELDS
    optional = ("Stride Width",) if fmt == "conv" else ()
    text = read_text(path, "topology file")
    rows = [(number, _cells(line)) for number, line in enumerate(text.splitlines(), start=1)]
    rows = [(number, cells) for number, cells in rows if cells]
    if not rows:
        raise DesimError("the topology is empty: expected a header row and at least one layer", file=path)
    (header_line, header), body = rows[0], rows[1:]
    if len(header) > 1 and all(parse_int(cell) is not None for cell in header[1:]):
        raise DesimError(
            "the first row must be a header (column names), but it looks like a layer", file=path, line=header_line
        )
    if not body:
        raise DesimError("the topology has a header but no layers", file=path, line=header_line)
    if fmt == "gemm" and any("ifmap" in cell.lower() for cell in header):
        raise DesimError(
            "this header names conv columns (IFMAP ...), but -i gemm expects M, N, K; use -i conv",
            file=path,
            line=header_line,
        )

    layers: list[Layer] = []
    ignored: set[str] = set()
    width = 1 + len(fields) + len(optional)
    for number, cells in body:
        if len(cells) < 1 + len(fields):
            raise DesimError(
                f"expected {1 + len(fields)} fields (name, {', '.join(fields)}), got {len(cells)}",
                file=path,
                line=number,
            )
        for index in range(width, len(cells)):
            if cells[index]:
                ignored.add(header[index] if index < len(header) and header[index] else f"column {index + 1}")
        name = cells[0]
        if not name:
            raise DesimError("the layer name (first field) is empty", file=path, line=number)
        names = (*fields, *optional)
        values = [_positive_int(cells[i + 1], names[i], path, number) for i in range(min(len(cells), width) - 1)]
        count = values[4] if fmt == "conv" and "DP" in name else 1  # a depthwise row: a layer per channel
        if len(layers) + count > MAX_LAYERS:
            raise DesimError(
                f"the workload would have {len(layers) + count:,} layers here (depthwise rows count one per "
                f"channel); desim runs at most {MAX_LAYERS:,}",
                file=path,
                line=number,
            )
        try:
            expanded = _layers(name, values, fmt, number)
            expanded[0].check()  # a depthwise row's layers differ only in name
        except DesimError as error:
            raise DesimError(error.message, file=path, line=number) from None
        layers.extend(expanded)
    if ignored:
        named = sorted(ignored)
        more = f" and {len(named) - 10:,} more" if len(named) > 10 else ""
        warnings.warn(
            DesimWarning(f"{path}: columns desim does not model were ignored: {', '.join(named[:10])}{more}"),
            stacklevel=2,
        )
    return layers


def _layers(name: str, values: list[int], fmt: str, line: int) -> list[Layer]:
    if fmt == "gemm":
        m, n, k = values
        return [Layer.gemm(name, m, n, k, line)]
    height, width, filter_h, filter_w, channels, filters, stride = values[:7]
    stride_w = values[7] if len(values) > 7 else stride
    if "DP" in name:
        return [
            Layer(f"{name}Channel_{i}", height, width, filter_h, filter_w, 1, filters, stride, stride_w, line)
            for i in range(channels)
        ]
    return [Layer(name, height, width, filter_h, filter_w, channels, filters, stride, stride_w, line)]


def _cells(line: str) -> list[str]:
    cells = [cell.strip() for cell in line.split(",")]
    while cells and not cells[-1]:
        cells.pop()
    return cells


def _positive_int(text: str, field: str, path: str | Path, line: int) -> int:
    if not text:
        raise DesimError(f"field '{field}' is empty; expected a positive integer", file=path, line=line)
    value = parse_int(text)
    if value is None:
        raise DesimError(f"field '{field}' must be a positive integer, got {brief(text)}", file=path, line=line)
    if value < 1:
        raise DesimError(f"field '{field}' must be a positive integer, got {value}", file=path, line=line)
    if value > MAX_OPERAND_ELEMENTS:
        raise DesimError(
            f"field '{field}' must be at most {MAX_OPERAND_ELEMENTS:,}, got {brief(text)}", file=path, line=line
        )
    return value


def topology_csv(layers: Sequence[Layer]) -> str:
    """``layers`` as a conv topology CSV that SCALE-Sim and :func:`read_topology` read alike (a
    ninth column, the width stride, only when some layer's differs from its height stride)."""
    widths = any(layer.stride_width != layer.stride_height for layer in layers)
    header = ["Layer name", *CONV_FIELDS, *(["Stride Width"] if widths else [])]
    rows = [", ".join(header) + ","]
    for layer in layers:
        values = [
            layer.ifmap_height,
            layer.ifmap_width,
            layer.filter_height,
            layer.filter_width,
            layer.channels,
            layer.num_filters,
            layer.stride_height,
            *([layer.stride_width] if widths else []),
        ]
        rows.append(", ".join([layer.name, *map(str, values)]) + ",")
    return "\n".join(rows) + "\n"
