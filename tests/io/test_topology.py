import warnings

import pytest

from desim import DesimError
from desim.io.topology import read_topology
from desim.workload import Layer

HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"


def write(tmp_path, text, name="topo.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path, fmt="conv") -> DesimError:
    with pytest.raises(DesimError) as error:
        read_topology(path, fmt)
    return error.value


def test_conv_rows_with_trailing_commas_and_blank_lines(tmp_path):
    path = write(tmp_path, HEADER + "\nConv1, 224, 224, 11, 11, 3, 96, 4,\n\n  \nConv2,27,27,5,5,96,256,1\n")
    assert read_topology(path) == [
        Layer("Conv1", 224, 224, 11, 11, 3, 96, 4, 4),
        Layer("Conv2", 27, 27, 5, 5, 96, 256, 1, 1),
    ]


def test_optional_ninth_column_is_the_width_stride(tmp_path):
    path = write(tmp_path, HEADER + "C, 10, 12, 3, 3, 2, 4, 1, 2,\n")
    assert read_topology(path)[0].stride_width == 2


def test_gemm_rows_map_to_the_conv_view(tmp_path):
    path = write(tmp_path, "Layer, M, N, K,\nL0, 196, 192, 384,\n")
    (layer,) = read_topology(path, "gemm")
    assert layer == Layer.gemm("L0", 196, 192, 384)
    assert (layer.m, layer.n, layer.k) == (196, 192, 384)


def test_depthwise_dp_rows_expand_per_channel_as_scalesim_does(tmp_path):
    path = write(tmp_path, HEADER + "Conv_DP1, 114, 114, 3, 3, 4, 1, 1,\n")
    layers = read_topology(path)
    assert [layer.name for layer in layers] == [f"Conv_DP1Channel_{i}" for i in range(4)]
    assert all(layer.channels == 1 and layer.num_filters == 1 for layer in layers)


def test_extra_columns_are_named_in_one_warning(tmp_path):
    path = write(tmp_path, HEADER.rstrip(",\n") + ", Stride W, Sparsity,\nC, 8, 8, 3, 3, 2, 4, 1, 1, 2:4,\n")
    with pytest.warns(UserWarning, match="Sparsity"):
        read_topology(path)


def test_missing_file(tmp_path):
    error = error_of(tmp_path / "nope.csv")
    assert error.file.endswith("nope.csv") and "not found" in error.message


def test_a_directory_is_not_a_file(tmp_path):
    assert "directory" in error_of(tmp_path).message


@pytest.mark.parametrize(
    ("row", "line", "message"),
    [
        ("C, 8, 8, 3, three, 2, 4, 1,", 2, "field 'Filter Width' must be a positive integer, got 'three'"),
        ("C, 8, 8, 3, 3, , 4, 1,", 2, "field 'Channels' is empty"),
        ("C, 8, 8, 3, 3, 2, 0, 1,", 2, "field 'Num Filter' must be a positive integer, got 0"),
        ("C, 8, -8, 3, 3, 2, 4, 1,", 2, "field 'IFMAP Width' must be a positive integer, got -8"),
        ("C, 8, 8, 9, 3, 2, 4, 1,", 2, "filter height 9 is larger than the ifmap height 8"),
        ("C, 8, 8, 3, 3,", 2, "expected 8 fields"),
        (", 8, 8, 3, 3, 2, 4, 1,", 2, "layer name"),
        ("C, 8, 8, 3, 3, 2, 4, 1.5,", 2, "'Strides' must be a positive integer, got '1.5'"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path, row, line, message):
    error = error_of(write(tmp_path, HEADER + row + "\n"))
    assert error.line == line and message in error.message and error.file.endswith("topo.csv")


def test_bad_gemm_row(tmp_path):
    error = error_of(write(tmp_path, "Layer, M, N, K,\nL0, 196, x, 384,\n"), "gemm")
    assert (error.line, error.message) == (2, "field 'N' must be a positive integer, got 'x'")


def test_empty_and_header_only_files(tmp_path):
    assert "empty" in error_of(write(tmp_path, "\n\n")).message
    assert "no layers" in error_of(write(tmp_path, HEADER)).message


def test_a_missing_header_is_caught_rather_than_dropping_a_layer(tmp_path):
    error = error_of(write(tmp_path, "Conv1, 224, 224, 11, 11, 3, 96, 4,\n"))
    assert error.line == 1 and "header" in error.message


def test_every_shipped_topology_reads_cleanly():
    from helpers import ROOT

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for path in sorted((ROOT / "topologies" / "conv").glob("*.csv")):
            assert read_topology(path, "conv")
        for path in sorted((ROOT / "topologies" / "gemm").glob("*.csv")):
            assert read_topology(path, "gemm")
    assert len(read_topology(ROOT / "topologies" / "conv" / "resnet50.csv")) == 54


def test_a_file_that_is_not_text(tmp_path):
    path = tmp_path / "topo.csv"
    path.write_bytes(HEADER.encode() + b"C1, 8, 8, 3, 3, 2, 4, 1,\xff\xfe\n")
    assert "not UTF-8" in error_of(path).message
