"""Stalls emerge from the memory processes. Expected cycles are worked out by hand from the model.

The layer is a 4x4x4 GEMM on a 4x4 ws array: one fold of 2*4 + 4 + 4 - 2 = 14 cycles that needs a
16-byte IFMAP tile and a 16-byte FILTER tile and produces 16 bytes of results.
"""

import math

import pytest
from helpers import run, system

from desim.io.scalesim_cfg import standard_system
from desim.system import System
from desim.workload import Layer

GEMM = Layer.gemm("g", m=4, n=4, k=4)


def stats_of(sys_: System, layer: Layer = GEMM) -> dict:
    (result,) = run(sys_, [layer])
    return result.stats


def test_ideal_memory_has_no_stalls():
    s = stats_of(system(rows=4, cols=4, sram_bytes=1024))
    assert (s["array.total_cycles"], s["array.stall_cycles"]) == (13, 0)


def test_reads_queue_at_the_dram_and_the_drain_ends_the_layer():
    s = stats_of(system(rows=4, cols=4, sram_bytes=1024, bandwidth=4))
    # IFMAP arrives at 4; FILTER queued behind it arrives at 8; compute 8..22; write 22..26.
    assert s["array.stall_ifmap_cycles"] == 4
    assert s["array.stall_filter_cycles"] == 4
    assert s["array.stall_ofmap_cycles"] == 4
    assert s["array.total_cycles"] == 26 - 1
    assert s["array.compute_cycles"] + s["array.stall_cycles"] == s["array.total_cycles"]
    assert s["dram.read_bytes"] == 32 and s["dram.write_bytes"] == 16
    assert s["dram.busy_cycles"] == 12  # 48 bytes at 4 bytes/cycle: never more than its bandwidth
    assert s["dram.queue_wait_cycles"] == 4  # the FILTER read waited behind the IFMAP read
    assert (s["sram_ifmap.dram_first_cycle"], s["sram_ifmap.dram_last_cycle"]) == (0, 3)
    assert (s["sram_ofmap.dram_first_cycle"], s["sram_ofmap.dram_last_cycle"]) == (22, 25)


def test_dram_latency_is_added_once_per_request_and_pipelined():
    sys_ = standard_system(
        rows=4,
        cols=4,
        dataflow="ws",
        sram_bytes=dict.fromkeys(("ifmap", "filter", "ofmap"), 1024),
        bandwidth_bytes_per_cycle=4,
    )
    sys_.graph.nodes["dram"]["params"]["latency_cycles"] = 10
    s = stats_of(sys_)
    # IFMAP at 4 + 10; FILTER at 8 + 10; compute 18..32; write served 32..36, acknowledged at 46.
    assert (s["array.stall_ifmap_cycles"], s["array.stall_filter_cycles"]) == (14, 4)
    assert s["array.stall_ofmap_cycles"] == 14
    assert s["array.total_cycles"] == 46 - 1


def test_a_slow_bus_is_the_bottleneck():
    sys_ = system(rows=4, cols=4, sram_bytes=1024, bandwidth=math.inf)
    sys_.graph.nodes["bus"]["params"]["bandwidth_bytes_per_cycle"] = 2
    s = stats_of(sys_)
    assert s["array.stall_ifmap_cycles"] + s["array.stall_filter_cycles"] == 16  # 32 bytes at 2/cycle
    assert s["bus.bytes"] == 48 and s["bus.busy_cycles"] == 24


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_stalls_sum_to_the_gap_between_total_and_compute(dataflow):
    layer = Layer("c", 12, 12, 3, 3, 8, 20, 1, 1)
    s = stats_of(system(rows=8, cols=8, dataflow=dataflow, sram_bytes=512, bandwidth=3), layer)
    causes = s["array.stall_ifmap_cycles"] + s["array.stall_filter_cycles"] + s["array.stall_ofmap_cycles"]
    assert causes == s["array.stall_cycles"] > 0
    assert s["array.compute_cycles"] + s["array.stall_cycles"] == s["array.total_cycles"]


def test_two_clients_never_get_more_than_the_dram_bandwidth():
    layer = Layer("c", 16, 16, 3, 3, 16, 32)
    s = stats_of(system(rows=8, cols=8, sram_bytes=2048, bandwidth=5), layer)
    moved = s["dram.read_bytes"] + s["dram.write_bytes"]
    assert s["dram.busy_cycles"] == pytest.approx(moved / 5)
    assert s["dram.busy_cycles"] <= s["array.total_cycles"] + 1
    assert s["dram.queue_wait_cycles"] > 0  # IFMAP and FILTER prefetchers waited for each other
