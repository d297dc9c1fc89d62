"""Traffic split over DRAM channels by address: balanced, faster, and never faster than the channels allow."""

import networkx as nx
import pytest
from helpers import ROOT, run

from desim.io.arch_yaml import read_arch_yaml
from desim.io.topology import read_topology
from desim.system import System
from desim.workload import Layer

CHANNELS = ROOT / "configs" / "dram_channels.yaml"
DRAMS = ("dram0", "dram1", "dram2", "dram3")


def one_channel() -> System:
    """The same system with the crossbar and three channels gone: every buffer on dram0."""
    four = read_arch_yaml(CHANNELS)
    graph = nx.MultiDiGraph(four.graph)
    graph.remove_nodes_from(["xbar", "dram1", "dram2", "dram3"])
    for buffer in ("sram_ifmap", "sram_filter", "sram_ofmap"):
        graph.add_edge(buffer, "dram0", key="memory", src_port="memory", dst_port="clients")
    return System(graph, name="one_channel")


@pytest.fixture(scope="module")
def alexnet():
    layers = read_topology(ROOT / "topologies" / "conv" / "alexnet.csv")
    return run(read_arch_yaml(CHANNELS), layers), run(one_channel(), layers)


def test_four_channels_stall_at_most_half_as_much_as_one(alexnet):
    four, one = alexnet
    stalls_four = sum(result.stats["array.stall_cycles"] for result in four)
    stalls_one = sum(result.stats["array.stall_cycles"] for result in one)
    assert stalls_one > 0 and stalls_four <= stalls_one / 2


def test_no_layer_beats_its_compute_or_the_channels_peak(alexnet):
    four, _ = alexnet
    for result in four:
        s = result.stats
        moved = sum(s[f"{dram}.read_bytes"] + s[f"{dram}.write_bytes"] for dram in DRAMS)
        elapsed = s["array.total_cycles"] + 1
        assert elapsed >= s["array.compute_cycles"] + 1
        assert elapsed >= moved / (4 * 10)


def test_sequential_tensors_spread_evenly_over_the_channels(alexnet):
    four, one = alexnet
    totals = {dram: sum(r.stats[f"{dram}.read_bytes"] + r.stats[f"{dram}.write_bytes"] for r in four) for dram in DRAMS}
    mean = sum(totals.values()) / 4
    assert all(abs(moved - mean) <= 0.1 * mean for moved in totals.values()), totals
    # Bytes are conserved: four channels move what one does.
    assert sum(totals.values()) == sum(r.stats["dram0.read_bytes"] + r.stats["dram0.write_bytes"] for r in one)
    xbar = [r.stats["xbar.bytes_by_channel"] for r in four]
    assert {dram: sum(by[dram] for by in xbar) for dram in DRAMS} == totals


def test_a_transaction_across_granules_is_split_at_their_edges():
    # A 4x4 GEMM with 1-byte words and 8-byte granules over 4 channels: the 16-byte FILTER is
    # one transaction, bytes 0..7 to one channel and 8..15 to the next.
    system = read_arch_yaml(CHANNELS).with_param("xbar", "interleave_bytes", 8)
    for buffer in ("sram_ifmap", "sram_filter", "sram_ofmap"):
        system = system.with_param(buffer, "capacity_bytes", 256)
    system = system.with_param("array", "rows", 4).with_param("array", "cols", 4)
    (result,) = run(system, [Layer.gemm("g", m=4, n=4, k=4)])
    filters = {dram: result.stats[f"{dram}.tensor_read_bytes"].get("filter", 0) for dram in DRAMS}
    # The filter region starts at 2^40, a multiple of 32: granule 2^37 lands on channel 0.
    assert filters == {"dram0": 8, "dram1": 8, "dram2": 0, "dram3": 0}


def test_operands_can_each_have_a_channel():
    system = read_arch_yaml(CHANNELS).with_param("xbar", "select", "operand")
    (result,) = run(system, [Layer("conv", 20, 20, 3, 3, 8, 16)])
    s = result.stats
    assert set(s["dram0.tensor_read_bytes"]) == {"ifmap"}
    assert set(s["dram1.tensor_read_bytes"]) == {"filter"}
    assert set(s["dram2.tensor_write_bytes"]) == {"ofmap"}
    assert s["dram3.read_bytes"] == s["dram3.write_bytes"] == 0


def test_a_crossbar_behind_a_bus_ends_the_route_there(tmp_path):
    """Found by fuzzing: through a bus, a buffer's route ran on past the crossbar to 'more than one Memory'."""
    text = CHANNELS.read_text().replace("to: xbar.clients}", "to: bus.clients}")
    text = text.replace("  xbar:", "  bus:         {kind: bus, bandwidth_bytes_per_cycle: 64}\n  xbar:")
    (tmp_path / "bus.yaml").write_text(text + "  - {from: bus.memory, to: xbar.clients}\n")
    (result,) = run(read_arch_yaml(tmp_path / "bus.yaml"), [Layer("conv", 20, 20, 3, 3, 8, 16)])
    s = result.stats
    assert sum(s[f"{dram}.read_bytes"] + s[f"{dram}.write_bytes"] for dram in DRAMS) == s["bus.bytes"] > 0
