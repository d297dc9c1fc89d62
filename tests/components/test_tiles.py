"""The data identity of a layer's runs: the same data is the same tile, and tiles cover the tensors."""

import pytest
from helpers import input_elements

from desim.components.compute.dataflow import map_layer
from desim.components.compute.fold_schedule import build_schedule
from desim.data import TENSOR_SPACE, tensor_base
from desim.workload import Layer

WORD = 2
LAYER = Layer("3x3", 9, 8, 3, 3, 3, 10, 1, 1)


def schedule_of(dataflow, capacity, layer=LAYER, rows=4, cols=4):
    mapping = map_layer(layer, rows, cols, dataflow)
    return build_schedule(layer, mapping, WORD, dict.fromkeys(("ifmap", "filter", "ofmap"), capacity))


def covered(tiles) -> list[int]:
    """Every byte the tiles name, with repeats, sorted."""
    return sorted(a for tile in tiles for start, stop in tile.extents().tolist() for a in range(start, stop))


def input_bytes(layer: Layer) -> list[int]:
    """The IFMAP bytes any window reads, by brute force over the im2col matrix."""
    elements = input_elements(layer, range(layer.m), range(layer.k))
    return sorted(e * WORD + b for e in elements for b in range(WORD))


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("capacity", [1 << 20, 96])
def test_each_run_fetches_its_tile_and_the_tiles_cover_each_tensor(dataflow, capacity):
    schedule = schedule_of(dataflow, capacity)
    everything = {
        "ifmap": input_bytes(LAYER),
        "filter": list(range(TENSOR_SPACE, TENSOR_SPACE + LAYER.k * LAYER.n * WORD)),
    }
    for operand, wanted in everything.items():
        plan = schedule.plans[operand]
        assert len(plan.tiles) == len(plan.fetch)
        tiles = [tile for tile in plan.tiles if tile is not None]
        assert all(tile.tensor == operand for tile in tiles)
        assert [tile.nbytes if tile else 0 for tile in plan.tiles] == plan.fetch
        assert all(tile.nbytes == len(covered([tile])) for tile in tiles)
        named = covered(tiles)
        if plan.resident:  # each byte fetched exactly once
            assert named == wanted
        else:  # every byte at least once, nothing outside the tensor's data
            assert sorted(set(named)) == wanted


@pytest.mark.parametrize("dataflow", ["ws", "is"])
def test_a_spilled_partial_sum_is_read_back_from_where_it_was_written(dataflow):
    schedule = schedule_of(dataflow, 40)
    plan = schedule.plans["ofmap"]
    readbacks = [(run, index) for run, index in enumerate(plan.after_write) if index >= 0]
    assert readbacks
    for run, index in readbacks:
        assert plan.tiles[run] is plan.writes[index]
        assert plan.fetch[run] == plan.writes[index].nbytes
    # Outputs land once each in OFMAP's region; partial sums (a word each here) in their own tensor's.
    size = LAYER.m * LAYER.n * WORD
    finals = [tile for tile in plan.writes if tile.tensor == "ofmap"]
    psums = [tile for tile in plan.writes if tile.tensor == "psum"]
    assert covered(finals) == list(range(tensor_base("ofmap"), tensor_base("ofmap") + size))
    assert sorted(set(covered(psums))) == list(range(tensor_base("psum"), tensor_base("psum") + size))


def test_re_fetching_a_streamed_tile_names_the_same_addresses():
    """Once every fetch got a new, ever-increasing address, so no level could ever hold a tile."""
    layer = Layer("Conv1", 224, 224, 11, 11, 3, 96, 4)
    mapping = map_layer(layer, 32, 32, "ws")
    schedule = build_schedule(layer, mapping, 1, dict.fromkeys(("ifmap", "filter", "ofmap"), 65536))
    plan = schedule.plans["ifmap"]
    assert not plan.resident
    firsts = {tile.address_at(0) for tile in plan.tiles}
    assert len({id(tile) for tile in plan.tiles}) == len(firsts)
    # Each row fold's tile streams in the same parts for each of the 3 column folds.
    assert mapping.col_folds == 3 and len(firsts) * 3 == len(plan.tiles) == 432


def test_the_first_filter_tile_of_a_small_gemm_by_hand():
    # 4x4 GEMM on a 2x2 ws array: fold (row 0, col 0) holds FILTER rows 0..1, columns 0..1 of the
    # 4-column matrix: bytes 0..1 and 4..5 (one-byte words) of the filter's region.
    layer = Layer.gemm("g", m=4, n=4, k=4)
    mapping = map_layer(layer, 2, 2, "ws")
    schedule = build_schedule(layer, mapping, 1, dict.fromkeys(("ifmap", "filter", "ofmap"), 8))
    first = schedule.plans["filter"].tiles[0]
    assert (first.extents() - TENSOR_SPACE).tolist() == [[0, 2], [4, 6]]
    # Its IFMAP tile, all 4 rows of the 4x4 im2col matrix and columns 0..1, is more than the 4
    # words the 8-byte buffer stages at once, so it streams in two parts of two rows each.
    ifmap = schedule.plans["ifmap"].tiles
    assert [tile.extents().tolist() for tile in ifmap[:2]] == [[[0, 2], [4, 6]], [[8, 10], [12, 14]]]
