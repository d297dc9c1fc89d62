"""Two arrays sharing an L2 and a DRAM: work split between them, contention charged, reports apart."""

import json
import math

import pytest
from click.testing import CliRunner
from helpers import ROOT, check_stall_report, read_report, run

from desim.cli import main
from desim.io.arch_yaml import read_arch_yaml
from desim.io.topology import read_topology
from desim.system import System
from desim.workload import Layer, Share, split_layer

TWO = ROOT / "configs" / "two_arrays.yaml"
ALEXNET = ROOT / "topologies" / "conv" / "alexnet.csv"
ARRAYS = ("array0", "array1")


def alone(system: System) -> System:
    """The same system with array1 and its buffers gone."""
    graph = system.graph.copy()
    graph.remove_nodes_from(["array1", "array1_ifmap", "array1_filter", "array1_ofmap"])
    return System(graph, name="one_array", split=system.split)


def ideal(system: System) -> System:
    for node in ("dram", "l2"):
        system = system.with_param(node, "bandwidth_bytes_per_cycle", math.inf).with_param(node, "latency_cycles", 0)
    return system


def elapsed(results) -> int:
    """Cycles of the whole run: each layer as long as its slower array."""
    return sum(max(r.stats[f"{a}.total_cycles"] for a in ARRAYS if f"{a}.total_cycles" in r.stats) + 1 for r in results)


def test_shares_cover_each_layer_once():
    layer = Layer("c", 20, 20, 3, 3, 8, 7)
    assert split_layer(layer, 2, "every") == [Share(0, 324, 0, 7)] * 2
    assert split_layer(layer, 2, "n") == [Share(0, 324, 0, 3), Share(0, 324, 3, 7)]
    assert split_layer(layer, 3, "m") == [Share(0, 108, 0, 7), Share(108, 216, 0, 7), Share(216, 324, 0, 7)]
    assert [share.empty for share in split_layer(layer, 8, "n")] == [True] + [False] * 7  # 7 channels, 8 arrays


def test_two_arrays_with_ideal_memory_run_alexnet_at_least_1_8_times_as_fast_as_one():
    layers = read_topology(ALEXNET)
    two = ideal(read_arch_yaml(TWO))
    one, both = elapsed(run(alone(two), layers)), elapsed(run(two, layers))
    assert one >= 1.8 * both
    # Split by output channels, each array runs half the MACs, and together all of them.
    for result in run(two, layers[:2]):
        layer = result.layer
        assert sum(result.stats[f"{a}.macs"] for a in ARRAYS) == layer.macs


@pytest.mark.parametrize("split", ["n", "m"])
def test_a_split_layer_reads_each_tensor_from_dram_once_through_a_shared_l2(split):
    two = read_arch_yaml(TWO).with_param("l2", "line_bytes", 1)
    two = System(two.graph, name="two", split=split)
    layer = Layer("conv", 30, 30, 3, 3, 16, 64)
    (result,) = run(two, [layer])
    s = result.stats
    assert s["dram.tensor_read_bytes"] == {"ifmap": 30 * 30 * 16, "filter": layer.k * layer.n}
    assert s["dram.tensor_write_bytes"]["ofmap"] == layer.m * layer.n


def test_each_array_queues_behind_the_other():
    layers = read_topology(ALEXNET)[:3]
    two = read_arch_yaml(TWO)
    with_other = run(two, layers)
    by_itself = run(alone(two), layers)

    def queued(results, array):
        return sum(
            cycles
            for r in results
            for label, cycles in r.stats[f"{array}.stall_cause_cycles"].items()
            if label.endswith(" queue")
        )

    assert queued(with_other, "array0") > queued(by_itself, "array0")
    assert queued(with_other, "array1") > 0


def test_desim_run_sweep_and_trace_take_two_arrays(tmp_path):
    topology = tmp_path / "two_layers.csv"
    topology.write_text("\n".join(ALEXNET.read_text().splitlines()[:3]) + "\n")
    runner = CliRunner()
    trace = tmp_path / "trace.json"
    result = runner.invoke(
        main, ["run", "-q", "-a", str(TWO), "-t", str(topology), "-p", str(tmp_path), "--trace", str(trace)]
    )
    assert result.exit_code == 0, result.output
    folder = tmp_path / "two_arrays"
    summary = json.loads((folder / "SUMMARY.json").read_text())
    assert summary["split"] == "n" and set(summary["arrays"]) == set(ARRAYS)
    for array in ARRAYS:
        check_stall_report(folder / array / "STALL_REPORT.csv")
        columns = list(read_report(folder / array / "STALL_REPORT.csv")[0])
        assert "dram queue" in columns and "l2 queue" in columns
    events = json.loads(trace.read_text())["traceEvents"]
    processes = {e["args"]["name"].split(" (")[0] for e in events if e["name"] == "process_name"}
    assert set(ARRAYS) <= processes
    result = runner.invoke(
        main, ["sweep", "-a", str(TWO), "-t", str(topology), "--vary", "dram.bandwidth_bytes_per_cycle=8,64"]
    )
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert int(rows[0][1]) > int(rows[1][1])  # more bandwidth, fewer cycles


def test_an_array_with_no_share_of_a_layer_reports_it_as_idle(tmp_path):
    """Found by fuzzing: with split n, a layer of one output channel left the second array's ledger empty."""
    topology = tmp_path / "one_channel.csv"
    topology.write_text("Layer, M, N, K,\ng, 8, 1, 8,\n")
    result = CliRunner().invoke(
        main, ["run", "-q", "-a", str(TWO), "-t", str(topology), "-i", "gemm", "-p", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    (idle,) = read_report(tmp_path / "two_arrays" / "array0" / "STALL_REPORT.csv")  # N = 1: all of it on array1
    assert (idle["Total Cycles"], idle["Stall Cycles"]) == ("0", "0")
    (busy,) = read_report(tmp_path / "two_arrays" / "array1" / "STALL_REPORT.csv")
    assert int(busy["Total Cycles"]) > 0
    check_stall_report(tmp_path / "two_arrays" / "array0" / "STALL_REPORT.csv")


def multicast_system(multicast: bool) -> System:
    """two_arrays.yaml with a crossbar over two DRAM channels where its L2 was."""
    two = read_arch_yaml(TWO)
    graph = two.graph.copy()
    graph.remove_nodes_from(["l2", "dram"])
    graph.add_node("xbar", kind="crossbar", params={"multicast": multicast})
    for channel in ("dram0", "dram1"):
        graph.add_node(channel, kind="dram", params={"bandwidth_bytes_per_cycle": 8, "latency_cycles": 50})
        graph.add_edge("xbar", channel, key="memory", src_port="memory", dst_port="clients")
    for array in ARRAYS:
        for operand in ("ifmap", "filter", "ofmap"):
            graph.add_edge(f"{array}_{operand}", "xbar", key="memory", src_port="memory", dst_port="clients")
    return System(graph, name="multicast", split="n")


def test_a_multicast_crossbar_fetches_a_tile_two_arrays_want_once():
    layers = read_topology(ALEXNET)[:2]
    plain, shared = run(multicast_system(False), layers), run(multicast_system(True), layers)
    for alone_, together in zip(plain, shared, strict=True):

        def ifmap_reads(stats):
            return sum(stats[f"{dram}.tensor_read_bytes"].get("ifmap", 0) for dram in ("dram0", "dram1"))

        # Without multicast each array's IFMAP buffer fetches the whole IFMAP stream; with it, what
        # one fetches while the other wants the same bytes is read once.
        assert ifmap_reads(together.stats) < ifmap_reads(alone_.stats)
        assert ifmap_reads(together.stats) + together.stats["xbar.multicast_bytes"] == ifmap_reads(alone_.stats)
        assert together.stats["array0.total_cycles"] <= alone_.stats["array0.total_cycles"]
