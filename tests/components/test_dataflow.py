"""The mapping against SCALE-Sim's published model (reference README), written out here by hand."""

import pytest

from desim.components.compute.dataflow import map_layer
from desim.workload import Layer

# Inc5b_3x3 from the reference: 7x7x192 input, 3x3 filters, 384 of them: M=25, K=1728, N=384.
LAYER = Layer("Inc5b_3x3", 7, 7, 3, 3, 192, 384)


@pytest.mark.parametrize(
    ("dataflow", "rows", "cols", "folds", "cycles_per_fold"),
    [
        ("ws", 32, 32, 54 * 12, 2 * 32 + 32 + 25 - 2),
        ("os", 32, 32, 1 * 12, 1728 + 32 + 32 - 2),
        ("is", 32, 32, 54 * 1, 2 * 32 + 32 + 384 - 2),
        ("os", 256, 256, 1 * 2, 1728 + 256 + 256 - 2),
        ("ws", 8, 16, 216 * 24, 2 * 8 + 16 + 25 - 2),
    ],
)
def test_folds_and_cycles_per_fold(dataflow, rows, cols, folds, cycles_per_fold):
    mapping = map_layer(LAYER, rows, cols, dataflow)
    assert (mapping.folds, mapping.cycles_per_fold) == (folds, cycles_per_fold)
    assert mapping.ideal_cycles() == folds * cycles_per_fold


def test_folds_run_column_fold_outer_row_fold_inner():
    mapping = map_layer(Layer.gemm("g", m=5, n=70, k=40), 32, 32, "ws")  # Sr=K=40, Sc=N=70
    folds = mapping.folds_in_order()
    assert folds.row_fold.tolist() == [0, 1, 0, 1, 0, 1]
    assert folds.col_fold.tolist() == [0, 0, 1, 1, 2, 2]
    assert folds.used_rows.tolist() == [32, 8] * 3
    assert folds.used_cols.tolist() == [32, 32, 32, 32, 6, 6]
    assert folds.used_t.tolist() == [5] * 6


def test_mapping_efficiency_is_mean_used_fraction():
    # AlexNet Conv1 on 32x32 ws: K=363 -> 11 full row folds and one of 11 rows; SCALE-Sim reports 94.53125 %
    conv1 = Layer("Conv1", 224, 224, 11, 11, 3, 96, 4, 4)
    assert conv1.ofmap_height == 55  # ceil((224 - 11 + 4) / 4): the last window overhangs
    assert 100 * map_layer(conv1, 32, 32, "ws").mapping_efficiency() == pytest.approx(94.53125, abs=1e-9)


def test_unknown_dataflow_is_refused():
    with pytest.raises(ValueError, match="unknown dataflow"):
        map_layer(LAYER, 32, 32, "rs")
