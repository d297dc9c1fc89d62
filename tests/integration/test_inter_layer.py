"""inter_layer: forward: a layer's outputs still on chip are the next layer's inputs."""

import pytest
from click.testing import CliRunner
from helpers import ROOT, run

from desim.cli import main
from desim.io.arch_yaml import read_arch_yaml
from desim.workload import Chain, Layer

HIERARCHY = (ROOT / "configs" / "hierarchy_l2.yaml").read_text()
# A feeds B (18 x 18 x 32 out, 18 x 18 x 32 in) and B feeds C; D's input is not C's output.
A = Layer("A", 20, 20, 3, 3, 16, 32)
B = Layer("B", 18, 18, 3, 3, 32, 32)
C = Layer("C", 16, 16, 3, 3, 32, 8)
D = Layer("D", 16, 16, 3, 3, 8, 8)


def chain_run(tmp_path, inter_layer: str, layers: list[Layer]) -> list[dict]:
    arch = tmp_path / f"{inter_layer}.yaml"
    arch.write_text(HIERARCHY.replace("clock_mhz: 1000", f"clock_mhz: 1000\ninter_layer: {inter_layer}"))
    return [result.stats for result in run(read_arch_yaml(arch), layers)]


def test_layers_chain_only_where_an_output_is_the_next_input():
    workload = [A, B, C, D]
    assert [Chain.of(workload, i, "forward") for i in range(4)] == [
        Chain(None, B),
        Chain(A, C),
        Chain(B, None),
        Chain(None, None),  # C's output is 14 x 14 x 8; D reads 16 x 16 x 8
    ]
    assert all(Chain.of(workload, i, "cold") == Chain() for i in range(4))


def test_an_intermediate_that_fits_on_chip_never_goes_through_dram(tmp_path):
    a, b, c = chain_run(tmp_path, "forward", [A, B, C])
    between_ab, between_bc = 18 * 18 * 32, 16 * 16 * 32
    assert "ofmap" not in a["dram.tensor_write_bytes"] and "ifmap" not in b["dram.tensor_read_bytes"]
    assert "ofmap" not in b["dram.tensor_write_bytes"] and "ifmap" not in c["dram.tensor_read_bytes"]
    assert (a["l2.held_back_bytes"], b["l2.forwarded_bytes"]) == (between_ab, between_ab)
    assert (b["l2.held_back_bytes"], c["l2.forwarded_bytes"]) == (between_bc, between_bc)
    assert c["dram.tensor_write_bytes"]["ofmap"] == 14 * 14 * 8  # the last layer's output goes down
    assert a["dram.tensor_read_bytes"]["ifmap"] == 20 * 20 * 16  # and the first layer's input comes up


def test_cold_layers_write_and_read_back_every_intermediate(tmp_path):
    a, b = chain_run(tmp_path, "cold", [A, B])
    assert a["dram.tensor_write_bytes"]["ofmap"] == b["dram.tensor_read_bytes"]["ifmap"] == 18 * 18 * 32
    assert a["l2.held_back_bytes"] == b["l2.forwarded_bytes"] == 0


@pytest.mark.parametrize("inter_layer", ["cold", "forward"])
def test_a_layer_whose_input_is_not_the_previous_output_starts_cold(tmp_path, inter_layer):
    _, d = chain_run(tmp_path, inter_layer, [C, D])
    assert d["dram.tensor_read_bytes"]["ifmap"] == 16 * 16 * 8
    assert d["l2.forwarded_bytes"] == 0


def test_forward_without_a_level_that_keeps_data_says_it_does_nothing(tmp_path):
    arch = tmp_path / "arch.yaml"
    arch.write_text(
        (ROOT / "configs" / "scale_dram10.yaml")
        .read_text()
        .replace("word_bytes: 1", "word_bytes: 1\ninter_layer: forward")
    )
    topology = tmp_path / "chain.csv"
    topology.write_text("Layer, H, W, R, S, C, N, Stride,\nA, 20, 20, 3, 3, 16, 32, 1,\nB, 18, 18, 3, 3, 32, 32, 1,\n")
    result = CliRunner().invoke(main, ["run", "-q", "-a", str(arch), "-t", str(topology), "-p", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    warning = "desim: warning: inter_layer: forward has no effect here: no component of this system keeps data"
    assert result.output.count(warning) == 1
