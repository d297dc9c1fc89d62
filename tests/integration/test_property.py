"""Property: with ideal memory, every layer's cycles equal the reference closed form.

The closed form is written out here from the reference's published formulas, independently of
desim's own mapping code: ``E = ceil((H - R + s) / s)``; (Sr, Sc, T) per dataflow; ``folds =
ceil(Sr/R_a) * ceil(Sc/C_a)``; cycles per fold ``T + R_a + C_a - 2`` (os) or ``2 R_a + C_a + T - 2``
(ws, is); ``Total Cycles = folds * cycles_per_fold - 1``.
"""

import math

from helpers import run, system
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from desim.workload import Layer

MAX_FOLDS = 2500


def closed_form(layer: Layer, rows: int, cols: int, dataflow: str) -> tuple[int, float, float, int]:
    eh = math.ceil((layer.ifmap_height - layer.filter_height + layer.stride_height) / layer.stride_height)
    ew = math.ceil((layer.ifmap_width - layer.filter_width + layer.stride_width) / layer.stride_width)
    m, k, n = eh * ew, layer.filter_height * layer.filter_width * layer.channels, layer.num_filters
    sr, sc, t = {"os": (m, n, k), "ws": (k, n, m), "is": (k, m, n)}[dataflow]
    row_folds, col_folds = math.ceil(sr / rows), math.ceil(sc / cols)
    per_fold = t + rows + cols - 2 if dataflow == "os" else 2 * rows + cols + t - 2
    total = row_folds * col_folds * per_fold - 1
    used = [
        min(rows, sr - r * rows) * min(cols, sc - c * cols) / (rows * cols)
        for c in range(col_folds)
        for r in range(row_folds)
    ]
    # A one-cycle layer (total 0) has no defined utilisation in SCALE-Sim's formula; desim reports 0.
    util = 100 * m * n * k / (total * rows * cols) if total else 0.0
    return total, util, 100 * sum(used) / len(used), row_folds * col_folds


array_side = st.one_of(st.integers(1, 8), st.integers(9, 64), st.integers(65, 256))


@st.composite
def conv_layers(draw):
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    return Layer(
        "conv",
        h,
        w,
        draw(st.integers(1, h)),
        draw(st.integers(1, w)),
        draw(st.integers(1, 48)),
        draw(st.integers(1, 96)),
        draw(st.integers(1, 4)),
        draw(st.integers(1, 4)),
    )


gemm_layers = st.builds(
    lambda m, n, k: Layer.gemm("gemm", m, n, k), st.integers(1, 400), st.integers(1, 400), st.integers(1, 400)
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    layer=st.one_of(conv_layers(), gemm_layers),
    rows=array_side,
    cols=array_side,
    dataflow=st.sampled_from(["os", "ws", "is"]),
    sram_bytes=st.sampled_from([4096, 65536, 1 << 20]),
)
def test_ideal_memory_cycles_equal_the_closed_form(layer, rows, cols, dataflow, sram_bytes):
    total, util, mapping_efficiency, folds = closed_form(layer, rows, cols, dataflow)
    assume(folds <= MAX_FOLDS)
    (result,) = run(system(rows=rows, cols=cols, dataflow=dataflow, sram_bytes=sram_bytes), [layer])
    s = result.stats
    assert s["array.total_cycles"] == total
    assert s["array.stall_cycles"] == 0
    assert math.isclose(s["array.overall_util_percent"], util, rel_tol=0, abs_tol=1e-6)
    assert math.isclose(s["array.mapping_efficiency_percent"], mapping_efficiency, rel_tol=0, abs_tol=1e-6)
