"""The precomputed step table: cycles are conserved, staged runs fit, reuse is honoured."""

import pytest

from desim.components.compute.dataflow import map_layer
from desim.components.compute.fold_schedule import build_schedule
from desim.workload import Layer

LAYER = Layer("Inc5b_3x3", 7, 7, 3, 3, 192, 384)
BIG = dict.fromkeys(("ifmap", "filter", "ofmap"), 1 << 30)


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("staged", [1 << 30, 4096, 700, 3])
def test_cycles_are_conserved_and_runs_fit(dataflow, staged):
    mapping = map_layer(LAYER, 32, 32, dataflow)
    schedule = build_schedule(LAYER, mapping, 2, dict.fromkeys(("ifmap", "filter", "ofmap"), staged))
    cycles = [step[0] for step in schedule.steps]
    assert sum(cycles) == mapping.folds * mapping.cycles_per_fold
    assert max(schedule.ifmap_runs) <= max(staged, 2) and max(schedule.filter_runs) <= max(staged, 2)
    assert max(step[5] for step in schedule.steps) <= max(staged, 2)
    assert all(nbytes % 2 == 0 for nbytes in schedule.ifmap_runs + schedule.filter_runs)  # whole words
    # every run is read by a contiguous block of steps, in order, ending on a step marked last
    for run_col, last_col, runs in ((1, 2, schedule.ifmap_runs), (3, 4, schedule.filter_runs)):
        order = [step[run_col] for step in schedule.steps]
        assert order == sorted(order) and set(order) == set(range(len(runs)))
        assert sum(step[last_col] for step in schedule.steps) == len(runs)


def test_os_filter_tile_is_fetched_once_per_column_fold_when_it_fits():
    mapping = map_layer(LAYER, 8, 32, "os")  # 4 row folds per column fold
    schedule = build_schedule(LAYER, mapping, 1, BIG)
    assert len(schedule.filter_runs) == mapping.col_folds
    assert sum(schedule.filter_runs) == LAYER.k * LAYER.n  # the whole filter, once
    assert len(schedule.ifmap_runs) == mapping.folds  # the IFMAP row tile changes every fold


def test_sram_counts_follow_scalesim_definitions():
    mapping = map_layer(LAYER, 32, 32, "ws")
    schedule = build_schedule(LAYER, mapping, 1, BIG)
    totals = [sum(step[col] for step in schedule.steps) for col in (6, 7, 8)]
    # ws: IFMAP reads = col folds * K * M, FILTER = K * N, OFMAP writes = row folds * N * M
    assert totals == [12 * 1728 * 25, 1728 * 384, 54 * 384 * 25]
