"""Memory stalls that emerge: bounds, monotonicity, exact traffic, contention and the ledger.

Contracts 2 (bounds), 3 (traffic) and 4 (ledger) of the design. Every simulation here goes
through ``helpers.run``, which also checks that the ledger adds up.
"""

import itertools
import math

import numpy as np
import pytest
from helpers import run, system
from hypothesis import given, settings
from hypothesis import strategies as st

from desim.components.memory.dram import Dram
from desim.system import System
from desim.workload import Layer


def unique_inputs(layer: Layer) -> int:
    """Distinct input elements a conv layer reads, by brute force over every window (independent of desim)."""
    eh = math.ceil((layer.ifmap_height - layer.filter_height + layer.stride_height) / layer.stride_height)
    ew = math.ceil((layer.ifmap_width - layer.filter_width + layer.stride_width) / layer.stride_width)
    oy, ox, r, s, c = np.meshgrid(
        np.arange(eh),
        np.arange(ew),
        np.arange(layer.filter_height),
        np.arange(layer.filter_width),
        np.arange(layer.channels),
        indexing="ij",
    )
    y, x = oy * layer.stride_height + r, ox * layer.stride_width + s
    inside = (y < layer.ifmap_height) & (x < layer.ifmap_width)
    return len(set(zip(y[inside].tolist(), x[inside].tolist(), c[inside].tolist(), strict=True)))


small_layers = st.builds(
    lambda h, w, r, s, c, n, sh, sw: Layer("c", h, w, min(r, h), min(s, w), c, n, sh, sw),
    st.integers(3, 24),
    st.integers(3, 24),
    st.integers(1, 7),
    st.integers(1, 7),
    st.integers(1, 32),
    st.integers(1, 64),
    st.integers(1, 2),
    st.integers(1, 2),
)


# -- contract 2: bounds -------------------------------------------------------------------------


def test_infinite_bandwidth_has_no_stalls_and_the_closed_form_cycles():
    layer = Layer("c", 20, 20, 3, 3, 16, 40, 1, 1)
    for dataflow in ("os", "ws", "is"):
        (result,) = run(system(rows=8, cols=8, dataflow=dataflow, sram_bytes=512), [layer])
        s = result.stats
        assert s["array.stall_cycles"] == 0
        assert s["array.total_cycles"] == s["array.compute_cycles"]
        assert s["array.stall_cause_cycles"] and not any(s["array.stall_cause_cycles"].values())


@settings(max_examples=60, deadline=None)
@given(
    layer=small_layers,
    side=st.sampled_from([4, 8, 16, 32]),
    dataflow=st.sampled_from(["os", "ws", "is"]),
    sram_bytes=st.sampled_from([256, 1024, 4096, 65536]),
    bandwidth=st.sampled_from([1, 2.5, 4, 16, 64]),
)
def test_cycles_lie_between_the_bounds_and_halving_bandwidth_never_helps(layer, side, dataflow, sram_bytes, bandwidth):
    (fast,) = run(system(rows=side, cols=side, dataflow=dataflow, sram_bytes=sram_bytes, bandwidth=bandwidth), [layer])
    (slow,) = run(
        system(rows=side, cols=side, dataflow=dataflow, sram_bytes=sram_bytes, bandwidth=bandwidth / 2), [layer]
    )
    s = fast.stats
    elapsed, compute = s["array.total_cycles"] + 1, s["array.compute_cycles"] + 1
    moving = (s["dram.read_bytes"] + s["dram.write_bytes"]) / bandwidth
    # Requests complete at whole cycles while the DRAM serves exact fractions: allow 2 cycles.
    assert max(compute, moving) <= elapsed <= compute + moving + 2
    assert slow.stats["array.total_cycles"] >= s["array.total_cycles"]


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_latency_adds_at_most_a_round_trip_when_buffers_allow_overlap(dataflow):
    layer, latency, bandwidth = Layer("c", 30, 7, 3, 7, 2, 6), 20, 64
    sys_ = system(rows=16, cols=16, dataflow=dataflow, sram_bytes=65536, bandwidth=bandwidth)
    sys_.graph.nodes["dram"]["params"]["latency_cycles"] = latency
    (result,) = run(sys_, [layer])
    s = result.stats
    elapsed, compute = s["array.total_cycles"] + 1, s["array.compute_cycles"] + 1
    moving = (s["dram.read_bytes"] + s["dram.write_bytes"]) / bandwidth
    # The first read's latency and the last write's acknowledgement cannot be hidden.
    assert max(compute, moving) <= elapsed <= compute + moving + 2 * latency + 2
    assert s["array.stall_cause_cycles"]["dram latency"] > 0


# -- contract 3: traffic ------------------------------------------------------------------------


@pytest.mark.parametrize("filter_side", [1, 3, 7])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_an_operand_that_fits_is_read_exactly_once(filter_side, stride, dataflow):
    layer = Layer("c", 15, 13, filter_side, filter_side, 5, 20, stride, stride)
    word_bytes = 2
    (result,) = run(
        system(rows=8, cols=8, dataflow=dataflow, sram_bytes=1 << 20, bandwidth=8, word_bytes=word_bytes), [layer]
    )
    s = result.stats
    k = filter_side * filter_side * 5
    assert s["sram_ifmap.dram_read_bytes"] == unique_inputs(layer) * word_bytes
    assert s["sram_filter.dram_read_bytes"] == k * 20 * word_bytes
    # partial sums stayed on chip: each output written once, nothing read back
    assert s["sram_ofmap.dram_write_bytes"] == layer.m * layer.n * word_bytes
    assert s["sram_ofmap.dram_read_bytes"] == 0
    assert s["sram_ifmap.resident"] == s["sram_filter.resident"] == 1
    assert s["sram_ifmap.excess_bytes"] == s["sram_filter.excess_bytes"] == s["sram_ofmap.excess_bytes"] == 0


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_an_operand_that_does_not_fit_is_reread_never_less_than_once(dataflow):
    layer = Layer("c", 24, 24, 3, 3, 16, 48)
    (result,) = run(system(rows=8, cols=8, dataflow=dataflow, sram_bytes=1024, bandwidth=8), [layer])
    s = result.stats
    assert s["sram_ifmap.dram_read_bytes"] >= unique_inputs(layer)
    assert s["sram_filter.dram_read_bytes"] >= 3 * 3 * 16 * 48
    assert s["sram_ofmap.dram_write_bytes"] >= layer.m * layer.n
    assert s["sram_ifmap.resident"] == 0
    # bytes are conserved along the route: what the buffers moved is what the DRAM served
    buffers = ("sram_ifmap", "sram_filter", "sram_ofmap")
    assert s["dram.read_bytes"] == sum(s[f"{b}.dram_read_bytes"] for b in buffers)
    assert s["dram.write_bytes"] == sum(s[f"{b}.dram_write_bytes"] for b in buffers)
    assert s["bus.bytes"] == s["dram.read_bytes"] + s["dram.write_bytes"]


def test_spilled_partial_sums_are_written_and_read_back():
    # ws, K = 3*3*64 = 576 spans 9 row folds of 64; each accumulates a 100 x 16 block (1600 words).
    layer = Layer("c", 12, 12, 3, 3, 64, 16)
    sizes = {"ifmap": 1 << 20, "filter": 1 << 20, "ofmap": 1024}
    (result,) = run(system(rows=64, cols=16, dataflow="ws", sram_bytes=sizes, bandwidth=16), [layer])
    s = result.stats
    block = 100 * 16
    assert s["sram_ofmap.dram_write_bytes"] == 9 * block
    assert s["sram_ofmap.dram_read_bytes"] == 8 * block
    assert s["sram_ofmap.excess_bytes"] == 16 * block


# -- contention: two clients on one DRAM ----------------------------------------------------------


def two_arrays(bandwidth: float) -> System:
    components = {"dram": {"kind": "dram", "bandwidth_bytes_per_cycle": bandwidth, "transaction_bytes": 256}}
    links = []
    for a in ("a", "b"):
        components[a] = {"kind": "systolic_array", "rows": 8, "cols": 8, "dataflow": "ws"}
        for op in ("ifmap", "filter", "ofmap"):
            components[f"{a}_{op}"] = {"kind": "scratchpad", "operand": op, "capacity_bytes": 4096}
            links += [
                {"from": f"{a}.{op}", "to": f"{a}_{op}.compute"},
                {"from": f"{a}_{op}.memory", "to": "dram.clients"},
            ]
    return System.build(components, links, name="two_arrays")


def test_two_arrays_share_one_dram_and_wait_in_its_queue(monkeypatch):
    served = []
    elaborate = Dram.elaborate

    def observed(self, env, system):
        elaborate(self, env, system)
        self._channel.observers.append(lambda transfer, start, finish: served.append((start, finish, transfer.nbytes)))

    monkeypatch.setattr(Dram, "elaborate", observed)
    layer = Layer("c", 16, 16, 3, 3, 16, 32)
    bandwidth = 4
    (shared,) = run(two_arrays(bandwidth), [layer])
    s = shared.stats
    # The data bus never moves more than its bandwidth: service intervals are disjoint and each
    # lasts bytes / bandwidth, so in any window at most bandwidth x its length bytes pass.
    served.sort()
    for (_, end, _), (start, _, _) in itertools.pairwise(served):
        assert start >= end - 1e-9
    assert all(finish - start == pytest.approx(nbytes / bandwidth) for start, finish, nbytes in served)
    moved = s["dram.read_bytes"] + s["dram.write_bytes"]
    assert moved == sum(nbytes for _, _, nbytes in served)
    assert moved / bandwidth <= s["a.total_cycles"] + 1
    # Each array waited for the other's traffic, and the ledger says so.
    for array in ("a", "b"):
        ledger = s[f"{array}.stall_cause_cycles"]
        assert sum(ledger.values()) == s[f"{array}.stall_cycles"]
        assert ledger["dram queue"] > 0
    # Alone, an array is faster: the waiting comes from sharing, not from a formula.
    (alone,) = run(system(rows=8, cols=8, sram_bytes=4096, bandwidth=bandwidth), [layer])
    assert alone.stats["array.total_cycles"] < s["a.total_cycles"]


def test_a_slow_link_names_its_queue_in_the_ledger():
    sys_ = system(rows=8, cols=8, sram_bytes=2048, bandwidth=64)
    sys_.graph.edges["sram_ifmap", "bus", "memory"]["bandwidth_bytes_per_cycle"] = 1
    (result,) = run(sys_, [Layer("c", 16, 16, 3, 3, 16, 32)])
    ledger = result.stats["array.stall_cause_cycles"]
    slow = "bus.clients->sram_ifmap.memory service"  # read data crosses the link back to the buffer
    assert ledger[slow] == max(ledger.values()) > 0


# -- DRAM rows and scheduling -------------------------------------------------------------------


def test_fr_fcfs_serves_row_hits_first_and_beats_fcfs_when_streams_interleave():
    layer = Layer("c", 16, 16, 3, 3, 16, 32)

    def with_rows(scheduling):
        sys_ = system(rows=8, cols=8, sram_bytes=4096, bandwidth=8)
        sys_.graph.nodes["dram"]["params"].update(
            scheduling=scheduling, row_miss_cycles=30, transaction_bytes=256, banks=1, row_bytes=1024
        )
        (result,) = run(sys_, [layer])
        return result.stats

    fr, fc = with_rows("fr-fcfs"), with_rows("fcfs")
    assert fr["dram.row_hits"] > fc["dram.row_hits"]
    assert fr["array.total_cycles"] < fc["array.total_cycles"]
    assert fr["dram.row_hits"] + fr["dram.row_misses"] == fr["dram.transactions"]


# -- SRAM banks ---------------------------------------------------------------------------------


def test_a_single_ported_bank_stalls_the_array_and_the_ledger_says_so():
    layer = Layer("c", 16, 16, 3, 3, 16, 32)

    def with_ports(ports, banks):
        sys_ = system(rows=8, cols=8, sram_bytes=1024, bandwidth=64)
        sys_.graph.nodes["sram_filter"]["params"].update(ports_per_bank=ports, banks=banks, port_bytes_per_cycle=4)
        (result,) = run(sys_, [layer])
        return result.stats

    dual, single, two_banks = with_ports(2, 1), with_ports(1, 1), with_ports(1, 2)
    assert single["array.stall_cause_cycles"]["sram_filter bank conflict"] > 0
    assert single["sram_filter.bank_conflict_cycles"] > 0
    assert single["array.total_cycles"] > dual["array.total_cycles"]
    # alternating banks lets the fill go to the bank the array is not reading
    assert two_banks["sram_filter.bank_conflict_cycles"] < single["sram_filter.bank_conflict_cycles"]
    assert "sram_filter bank conflict" not in dual["array.stall_cause_cycles"]


# -- buffering modes ----------------------------------------------------------------------------


def test_lookahead_prefetches_further_than_double_buffering():
    layer = Layer("c", 16, 16, 3, 3, 16, 32)

    def with_buffering(mode):
        sys_ = system(rows=8, cols=8, dataflow="ws", sram_bytes=4096, bandwidth=4)
        for node in ("sram_ifmap", "sram_filter"):
            sys_.graph.nodes[node]["params"]["buffering"] = mode
        (result,) = run(sys_, [layer])
        return result.stats

    double, lookahead = with_buffering("double"), with_buffering("lookahead")
    assert lookahead["sram_filter.peak_occupancy_bytes"] > double["sram_filter.peak_occupancy_bytes"]
    assert lookahead["array.total_cycles"] < double["array.total_cycles"]
