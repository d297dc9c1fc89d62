"""One buffer for IFMAP and FILTER: capacity shared per layer, never exceeded, never worse than a rigid split."""

import json

import pytest
from helpers import ROOT, run

from desim.errors import DesimError
from desim.io.arch_yaml import read_arch_yaml
from desim.io.topology import read_topology
from desim.simulation import Simulation
from desim.system import System
from desim.trace import Trace
from desim.workload import Layer

UNIFIED = ROOT / "configs" / "unified_buffer.yaml"
SPLIT = ROOT / "configs" / "scale_dram10.yaml"  # the same array, OFMAP buffer, bus and DRAM, inputs apart
CAPACITY = 65536


def split_buffers(size):
    system = read_arch_yaml(SPLIT)
    for operand in ("ifmap", "filter"):
        system = system.with_param(f"sram_{operand}", "capacity_bytes", size)
    return system


def total_cycles(system, layers):
    return sum(result.stats["array.total_cycles"] for result in Simulation(system).run(layers))


@pytest.mark.parametrize("network", ["alexnet", "resnet50"])
def test_shared_capacity_lies_between_more_capacity_and_the_same_capacity_split_rigidly(network):
    layers = read_topology(ROOT / "topologies" / "conv" / f"{network}.csv")
    unified = read_arch_yaml(UNIFIED)
    assert unified.params_of("ubuf")["capacity_bytes"] == CAPACITY
    more = total_cycles(split_buffers(CAPACITY), layers)
    shared = total_cycles(unified, layers)
    rigid = total_cycles(split_buffers(CAPACITY // 2), layers)
    assert more <= shared <= rigid
    assert more < rigid  # the capacity matters on these networks, so the test can tell


def test_occupancy_never_exceeds_the_shared_capacity(tmp_path):
    layers = read_topology(ROOT / "topologies" / "conv" / "alexnet.csv")[:3]
    system = read_arch_yaml(UNIFIED)
    path = tmp_path / "trace.json"
    with Trace(path, clock_mhz=system.clock_mhz) as trace:
        results = list(Simulation(system).run(layers, trace=trace))
    data = json.loads(path.read_text())
    pids = {e["args"]["name"].split(" (")[0]: e["pid"] for e in data["traceEvents"] if e["name"] == "process_name"}
    held = [
        e["args"]["bytes"]
        for e in data["traceEvents"]
        if e["ph"] == "C" and e["pid"] == pids["ubuf"] and e["name"] == "occupancy"
    ]
    assert held and max(held) <= CAPACITY
    assert max(held) > CAPACITY // 2  # some layer gave one operand more than half
    for result in results:
        s = result.stats
        assert s["ubuf.peak_occupancy_bytes"] <= CAPACITY
        assert set(s["ubuf.traffic"]) == {"ifmap", "filter"}
        assert s["ubuf.dram_read_bytes"] == sum(t["read_bytes"] for t in s["ubuf.traffic"].values())


def test_a_buffer_that_holds_other_operands_is_named():
    system = read_arch_yaml(UNIFIED).with_param("ubuf", "operands", ["ifmap", "ofmap"])
    with pytest.raises(DesimError) as raised:
        system.validate()
    assert str(raised.value).endswith("array.filter: connects to 'ubuf', which holds 'ifmap', 'ofmap', not 'filter'")


def test_all_three_operands_can_share_one_buffer():
    system = read_arch_yaml(UNIFIED)
    graph = system.graph.copy()
    graph.remove_node("sram_ofmap")
    graph.add_edge("array", "ubuf", key="ofmap", src_port="ofmap", dst_port="compute")
    graph.nodes["ubuf"]["params"] = {"capacity_bytes": 3 * 4096}
    (result,) = run(System(graph, name="one_buffer"), [Layer("conv", 20, 20, 3, 3, 16, 40, 1)])
    s = result.stats
    assert set(s["ubuf.traffic"]) == {"ifmap", "filter", "ofmap"}
    assert s["ubuf.peak_occupancy_bytes"] <= 3 * 4096
