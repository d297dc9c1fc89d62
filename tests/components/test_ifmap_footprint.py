"""Distinct input bytes of an im2col block, against a brute-force set of addresses."""

import itertools

import pytest
from helpers import input_elements
from hypothesis import given, settings
from hypothesis import strategies as st

from desim.components.compute.ifmap_footprint import distinct_inputs, first_use_inputs
from desim.workload import Layer


def addresses(layer: Layer, m0: int, m1: int, k0: int, k1: int) -> set[int]:
    """The input elements a block reads, by brute force."""
    return input_elements(layer, range(m0, m1), range(k0, k1))


def brute_force(layer: Layer, m0: int, m1: int, k0: int, k1: int) -> int:
    return len(addresses(layer, m0, m1, k0, k1))


LAYERS = [
    Layer("3x3 s1", 9, 8, 3, 3, 3, 4),
    Layer("3x3 s2", 11, 9, 3, 3, 2, 4, 2, 2),
    Layer("1x1 s1", 6, 6, 1, 1, 5, 4),
    Layer("1x1 s2", 7, 7, 1, 1, 3, 4, 2, 2),
    Layer("7x7 s2", 15, 16, 7, 7, 3, 4, 2, 2),
    Layer("overhang", 10, 10, 3, 3, 2, 4, 4, 4),
    Layer("past the edge", 2, 5, 1, 2, 2, 4, 3, 2),  # output row 1 starts at input row 3: reads nothing
    Layer.gemm("gemm", 6, 5, 7),
]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_counts_match_brute_force_on_every_block(layer):
    m, k = layer.m, layer.k
    cuts_m = sorted({0, 1, m // 3, m // 2, m - 1, m})
    cuts_k = sorted({0, 1, k // 4, k // 2, k - 2, k})
    for (m0, m1), (k0, k1) in itertools.product(itertools.pairwise(cuts_m), itertools.pairwise(cuts_k)):
        assert distinct_inputs(layer, m0, m1, k0, k1) == brute_force(layer, m0, m1, k0, k1), (m0, m1, k0, k1)
    assert distinct_inputs(layer, 0, m, 0, k) == brute_force(layer, 0, m, 0, k)


def test_whole_layer_touches_the_whole_input_when_windows_cover_it():
    layer = Layer("cover", 9, 9, 3, 3, 4, 2)
    assert distinct_inputs(layer, 0, layer.m, 0, layer.k) == layer.ifmap_elements


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_first_use_counts_only_what_no_earlier_block_read(layer):
    m, k = layer.m, layer.k
    cuts_m = sorted({0, m // 2, m})
    cuts_k = sorted({0, k // 3, 2 * k // 3, k})
    # the fold orders of the dataflows: row tiles over K (ws), row tiles over M (os), both (is)
    blocks = [(m0, m1, k0, k1) for (k0, k1) in itertools.pairwise(cuts_k) for (m0, m1) in itertools.pairwise(cuts_m)]
    counts = first_use_inputs(layer, blocks)
    seen: set = set()
    for block, count in zip(blocks, counts, strict=True):
        touched = addresses(layer, *block)
        assert count == len(touched - seen), block
        seen |= touched
    assert sum(counts) == len(addresses(layer, 0, m, 0, k))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_rows_with_whole_windows_match_brute_force(data):
    """Rows of the im2col matrix with all their columns: counted from the pixels under the windows."""
    h, w = data.draw(st.integers(1, 14)), data.draw(st.integers(1, 14))
    layer = Layer(
        "l",
        h,
        w,
        data.draw(st.integers(1, h)),
        data.draw(st.integers(1, w)),
        data.draw(st.integers(1, 3)),
        2,
        data.draw(st.integers(1, 5)),
        data.draw(st.integers(1, 5)),
    )
    m0 = data.draw(st.integers(0, layer.m - 1))
    m1 = data.draw(st.integers(m0 + 1, layer.m))
    assert distinct_inputs(layer, m0, m1, 0, layer.k) == brute_force(layer, m0, m1, 0, layer.k)
