"""The precomputed step table: cycles are conserved, runs fit, reuse and residency are honoured."""

import pytest

from desim.components.compute.dataflow import map_layer
from desim.components.compute.fold_schedule import build_schedule
from desim.workload import Layer

LAYER = Layer("Inc5b_3x3", 7, 7, 3, 3, 192, 384)
BIG = dict.fromkeys(("ifmap", "filter", "ofmap"), 1 << 30)


def schedule_of(dataflow, capacity, rows=32, cols=32, word_bytes=2, layer=LAYER):
    mapping = map_layer(layer, rows, cols, dataflow)
    sizes = capacity if isinstance(capacity, dict) else dict.fromkeys(("ifmap", "filter", "ofmap"), capacity)
    return mapping, build_schedule(layer, mapping, word_bytes, sizes)


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("capacity", [1 << 30, 8192, 1400, 6])
def test_cycles_are_conserved_and_runs_fit(dataflow, capacity):
    mapping, schedule = schedule_of(dataflow, capacity)
    assert sum(step[0] for step in schedule.steps) == mapping.folds * mapping.cycles_per_fold
    for operand, (run_col, release_col) in (("ifmap", (1, 2)), ("filter", (3, 4))):
        plan = schedule.plans[operand]
        assert all(nbytes % 2 == 0 for nbytes in plan.fetch)  # whole words
        if plan.resident:
            assert sum(plan.fetch) == plan.unique_bytes <= capacity
            assert not any(step[release_col] for step in schedule.steps)
        else:
            assert max(plan.hold) <= max(capacity // 2, 2)  # a streamed run fits the staging half
            order = [step[run_col] for step in schedule.steps]
            # every run is read by a contiguous block of steps, in order, and released once
            assert order == sorted(order) and set(order) == set(range(len(plan.fetch)))
            assert sum(step[release_col] for step in schedule.steps) == len(plan.fetch)
    ofmap = schedule.plans["ofmap"]
    assert max(ofmap.hold) <= max(capacity // 2, 2)
    # every result byte held is written once: room taken equals bytes written
    assert sum(ofmap.hold) == sum(step[6] for step in schedule.steps)


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_operands_that_fit_move_their_unique_bytes_once(dataflow):
    _, schedule = schedule_of(dataflow, BIG, word_bytes=1)
    ifmap, filter_, ofmap = (schedule.plans[op] for op in ("ifmap", "filter", "ofmap"))
    assert ifmap.resident and filter_.resident
    assert sum(ifmap.fetch) == ifmap.unique_bytes == 7 * 7 * 192  # every input pixel, once (no halo twice)
    assert sum(filter_.fetch) == filter_.unique_bytes == 3 * 3 * 192 * 384
    # partial sums never leave the buffer: the outputs are written once, nothing is read back
    assert sum(step[6] for step in schedule.steps) == ofmap.unique_bytes == 5 * 5 * 384
    assert sum(ofmap.fetch) == 0


def test_streamed_ws_ifmap_comes_back_every_column_fold():
    ifmap_words = 7 * 7 * 192
    mapping, schedule = schedule_of("ws", {"ifmap": ifmap_words - 1, "filter": 1 << 30, "ofmap": 1 << 30}, word_bytes=1)
    plan = schedule.plans["ifmap"]
    assert not plan.resident
    assert len(plan.fetch) == mapping.folds  # one run per fold: row-fold tiles cycle per column fold
    assert sum(plan.fetch) > mapping.col_folds * ifmap_words  # each pass re-reads the halo too


def test_psums_that_do_not_fit_spill_and_come_back():
    # ws on 32x32: K = 1728 gives 54 row folds accumulating a 25 x 32 block per column fold.
    block = 25 * 32
    mapping, schedule = schedule_of("ws", {"ifmap": 1 << 30, "filter": 1 << 30, "ofmap": block}, word_bytes=1)
    ofmap = schedule.plans["ofmap"]
    written = sum(step[6] for step in schedule.steps)
    assert written == mapping.folds * block  # every row fold writes its partial sums
    assert sum(ofmap.fetch) == (mapping.row_folds - 1) * mapping.col_folds * block  # and reads them back
    assert all(after >= 0 for fetch, after in zip(ofmap.fetch, ofmap.after_write, strict=True) if fetch)


def test_sram_counts_follow_scalesim_definitions():
    mapping = map_layer(LAYER, 32, 32, "ws")
    schedule = build_schedule(LAYER, mapping, 1, BIG)
    totals = [sum(step[col] for step in schedule.steps) for col in (7, 8, 9)]
    # ws: IFMAP reads = col folds * K * M, FILTER = K * N, OFMAP writes = row folds * N * M
    assert totals == [12 * 1728 * 25, 1728 * 384, 54 * 384 * 25]
