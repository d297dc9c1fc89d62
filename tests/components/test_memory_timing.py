"""Stalls emerge from the memory processes. Expected cycles are worked out by hand from the model.

The layer is a 4x4x4 GEMM on a 4x4 ws array: one fold of 2*4 + 4 + 4 - 2 = 14 cycles that needs a
16-byte IFMAP tile and a 16-byte FILTER tile and produces 16 bytes of results. The IFMAP and
FILTER prefetchers ask at cycle 0, IFMAP first; the OFMAP buffer writes the results once the fold
is done. Every stall is charged to a ledger label, also worked out by hand: ``array.stall_cause_cycles``
lists every declared label, so a label missing from an expected dict below must be 0.
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


def causes(stats: dict) -> dict[str, int]:
    """The ledger's labels that were charged, with their cycles."""
    return {label: cycles for label, cycles in stats["array.stall_cause_cycles"].items() if cycles}


def gemm_system(**dram: object) -> System:
    """The 4x4 array with 1 KiB scratchpads on an ideal bus to a DRAM with ``dram`` params."""
    sys_ = system(rows=4, cols=4, sram_bytes=1024)
    sys_.graph.nodes["dram"]["params"].update(dram)
    return sys_


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
    # Each stall overlaps only its request's own service: IFMAP 0..4, FILTER 4..8 (its queueing,
    # 0..4, came before the array waited for it), the write 22..26. 4 + 4 + 4 = 12.
    assert causes(s) == {"dram service": 12}


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
    # IFMAP wait 0..14: served 0..4, in flight 4..14. FILTER wait 14..18: in flight (8..18).
    # Drain 32..46: served 32..36, in flight 36..46. Service 4 + 4, latency 10 + 4 + 10.
    assert causes(s) == {"dram service": 8, "dram latency": 24}


def test_a_slow_bus_is_the_bottleneck():
    sys_ = system(rows=4, cols=4, sram_bytes=1024, bandwidth=math.inf)
    sys_.graph.nodes["bus"]["params"]["bandwidth_bytes_per_cycle"] = 2
    s = stats_of(sys_)
    assert s["array.stall_ifmap_cycles"] + s["array.stall_filter_cycles"] == 16  # 32 bytes at 2/cycle
    assert s["bus.bytes"] == 48 and s["bus.busy_cycles"] == 24
    # IFMAP on the bus 0..8, FILTER 8..16, the write 30..38: each wait is its own transfer's service.
    assert causes(s) == {"bus service": 24}


def test_unlimited_bandwidth_with_a_latency_books_the_latency():
    """Once a crash: the ledger met 'dram service' and 'dram latency' it had not been told of."""
    s = stats_of(gemm_system(latency_cycles=10))
    # Both reads are served at once and land at 10; compute 10..24; the write lands at 34.
    assert (s["array.stall_ifmap_cycles"], s["array.stall_filter_cycles"], s["array.stall_ofmap_cycles"]) == (
        10,
        0,
        10,
    )
    assert s["array.total_cycles"] == 34 - 1
    assert causes(s) == {"dram latency": 20}


def test_row_misses_cost_their_cycles_even_with_unlimited_bandwidth_and_no_latency():
    """Once silently ignored: with no latency the DRAM counted as ideal and row misses vanished."""
    s = stats_of(gemm_system(row_miss_cycles=5))
    # Three buffers, three rows (each buffer has its own address range), all in bank 0: every
    # transaction misses. IFMAP 0..5, FILTER queued behind it 5..10, compute 10..24, write 24..29.
    assert (s["array.stall_ifmap_cycles"], s["array.stall_filter_cycles"], s["array.stall_ofmap_cycles"]) == (
        5,
        5,
        5,
    )
    assert s["array.total_cycles"] == 29 - 1
    assert (s["dram.row_misses"], s["dram.row_hits"]) == (3, 0)
    assert causes(s) == {"dram service": 15}


def test_row_misses_and_latency_together():
    s = stats_of(gemm_system(row_miss_cycles=5, latency_cycles=10))
    # IFMAP missed 0..5, lands 15; FILTER missed 5..10, lands 20; compute 20..34; write missed
    # 34..39, lands 49. Waits: 0..15 (5 service, 10 latency), 15..20 (latency), 34..49 (5, 10).
    assert s["array.total_cycles"] == 49 - 1
    assert causes(s) == {"dram service": 10, "dram latency": 25}


def test_a_link_latency_is_charged_both_ways_to_that_link():
    sys_ = system(rows=4, cols=4, sram_bytes=1024, bandwidth=4)
    sys_.graph.edges["sram_ifmap", "bus", "memory"]["latency_cycles"] = 3
    s = stats_of(sys_)
    # The IFMAP read crosses the link as a request (0..3) and reaches the DRAM after the FILTER
    # read (asked at 0, served 0..4): it queues 3..4, is served 4..8, crosses back 8..11. The
    # FILTER tile is in by then; compute 11..25; the write is served 25..29.
    assert (s["array.stall_ifmap_cycles"], s["array.stall_filter_cycles"], s["array.stall_ofmap_cycles"]) == (
        11,
        0,
        4,
    )
    assert causes(s) == {
        "sram_ifmap.memory->bus.clients latency": 3,
        "dram queue": 1,
        "dram service": 4 + 4,
        "bus.clients->sram_ifmap.memory latency": 3,
    }


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
