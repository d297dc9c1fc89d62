"""Data identity: tiles, their extents and parts, lines, and tensor bases that only names decide."""

import numpy as np
import pytest

from desim.data import TENSOR_SPACE, Tile, element_extents, line_extents, lines_of, runs, tensor_base


def test_operands_have_fixed_regions_and_other_tensors_follow_by_name():
    assert [tensor_base(name) for name in ("ifmap", "filter", "ofmap")] == [0, TENSOR_SPACE, 2 * TENSOR_SPACE]
    psums = tensor_base("psums")
    assert psums >= 3 * TENSOR_SPACE and psums % TENSOR_SPACE == 0
    assert tensor_base("psums") == psums != tensor_base("psum2")


def test_element_extents_merge_runs_of_consecutive_elements():
    elements = np.array([0, 1, 2, 5, 7, 8])
    assert element_extents(elements, 2, 100).tolist() == [[100, 106], [110, 112], [114, 118]]
    assert element_extents(np.zeros(0, dtype=np.int64), 2, 0).shape == (0, 2)


def test_a_tile_makes_its_extents_once_and_checks_their_size():
    calls = []

    def make():
        calls.append(1)
        return np.array([[10, 14], [20, 22]])

    tile = Tile("ifmap", 6, make=make)
    assert tile.extents().tolist() == tile.extents().tolist() == [[10, 14], [20, 22]]
    assert len(calls) == 1
    with pytest.raises(AssertionError, match="hold 6 bytes"):
        Tile("ifmap", 5, make=make).extents()
    with pytest.raises(ValueError):
        Tile("ifmap", 6)


def test_parts_and_addresses_walk_the_extents_in_order():
    tile = Tile("filter", 10, np.array([[100, 104], [200, 203], [300, 303]]))
    assert [tile.address_at(offset) for offset in (0, 3, 4, 6, 7, 9)] == [100, 103, 200, 202, 300, 302]
    assert tile.part(2, 5).extents().tolist() == [[102, 104], [200, 203]]
    assert tile.part(4, 3).extents().tolist() == [[200, 203]]
    assert tile.part(5, 5).extents().tolist() == [[201, 203], [300, 303]]
    assert tile.part(0, 10) is tile
    pieces = [tile.part(offset, 2) for offset in range(0, 10, 2)]
    covered = sorted(a for piece in pieces for start, stop in piece.extents().tolist() for a in range(start, stop))
    assert covered == [*range(100, 104), *range(200, 203), *range(300, 303)]


def test_a_span_is_one_extent_in_its_tensors_region():
    assert Tile.span("ofmap", 64, 32).extents().tolist() == [[2 * TENSOR_SPACE + 64, 2 * TENSOR_SPACE + 96]]


def test_lines_are_the_distinct_lines_extents_touch():
    extents = np.array([[1000 + 5, 1000 + 70], [1000 + 70, 1000 + 71], [1000 + 200, 1000 + 201]])
    assert lines_of(extents, 64, 1000).tolist() == [0, 1, 3]
    # Lines back to bytes, the last one cut at the tensor's end (150 bytes into its region).
    assert line_extents(np.array([0, 1, 2]), 64, 1000, 150).tolist() == [[1000, 1150]]
    assert line_extents(np.array([0, 2]), 64, 1000, 150).tolist() == [[1000, 1064], [1128, 1150]]


def test_runs_lay_ranges_end_to_end_and_skip_empty_ones():
    assert runs(np.array([5, 0, 10]), np.array([2, 0, 3])).tolist() == [5, 6, 10, 11, 12]
    assert runs(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)).tolist() == []
