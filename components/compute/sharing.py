"""How operands that share one buffer split its capacity, layer by layer.

A unified buffer of ``C`` bytes holding IFMAP and FILTER (and perhaps OFMAP) gives each operand a
*budget*: the room its plan is made for and its prefetcher may fill. The split is planned per
layer from the layer's known schedule, among these candidates, in order:

1. equal shares, ``C / k`` each (what ``k`` separate buffers of that size would do);
2. one input operand (IFMAP or FILTER) whole, at its distinct bytes, the others sharing the rest
   equally; then both inputs whole, if they fit;

a candidate counting only if every share can still double-buffer an edge of the array. The
candidate whose schedule moves the fewest bytes to and from the level below wins (the first, on
a tie), so a unified buffer never moves more than the same capacity split rigidly.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

from desim.components.compute.ifmap_footprint import distinct_inputs
from desim.workload import Layer, Share

INPUTS = ("ifmap", "filter")


def candidate_splits(
    layer: Layer, share: Share, word_bytes: int, capacity: int, operands: Sequence[str], least: int
) -> list[dict]:
    """The budgets worth trying for ``operands`` of ``share`` sharing ``capacity`` bytes, each at least ``least``."""
    whole = {
        "ifmap": distinct_inputs(layer, share.m_start, share.m_stop, 0, layer.k) * word_bytes,
        "filter": layer.k * share.n * word_bytes,
    }
    equal = capacity // len(operands) // word_bytes * word_bytes
    splits = [dict.fromkeys(operands, equal)]
    inputs = [operand for operand in INPUTS if operand in operands]
    for count in range(1, len(inputs) + 1):
        for kept in combinations(inputs, count):
            rest = [operand for operand in operands if operand not in kept]
            left = capacity - sum(whole[operand] for operand in kept)
            each = left // len(rest) // word_bytes * word_bytes if rest else 0
            if left < 0 or (rest and each < least):
                continue
            split = {operand: each for operand in rest}
            split.update({operand: max(whole[operand], least) for operand in kept})
            if sum(split.values()) <= capacity:
                splits.append({operand: split[operand] for operand in operands})
    return splits
