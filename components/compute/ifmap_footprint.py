"""Which input bytes a block of the im2col IFMAP matrix really touches.

Row ``m`` of the ``M x K`` IFMAP matrix is output pixel ``(eh, ew)``; column ``k`` is window
element ``(r, s, c)``, channel fastest. Together they read input element ``(eh*sh + r,
ew*sw + s, c)``, stored channel-fastest at address ``((eh*sh + r)*W + ew*sw + s)*C + c``. Windows of
neighbouring pixels overlap, so a block of the matrix repeats input elements: fetching the block
from DRAM moves only its distinct ones. This module counts them exactly, for one block
(:func:`distinct_inputs`) or for a sequence of blocks each counting only what no earlier one read
(:func:`first_use_inputs`, the traffic of an operand that stays in its buffer). Window positions
past the input's edge (SCALE-Sim's last window may overhang when the stride does not divide
``H - R``) read nothing and are not counted.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import replace

import numpy as np

from desim.workload import Layer

_BLOCK_ELEMENTS = 1 << 21  # addresses materialised at once, to bound memory on large blocks

Block = tuple[int, int, int, int]
"""Rows ``[m_start, m_stop)`` and columns ``[k_start, k_stop)`` of the im2col matrix."""


def distinct_inputs(layer: Layer, m_start: int, m_stop: int, k_start: int, k_stop: int) -> int:
    """Distinct input elements read by rows ``[m_start, m_stop)`` and columns ``[k_start, k_stop)``."""
    rows, cols = m_stop - m_start, k_stop - k_start
    if rows <= 0 or cols <= 0:
        return 0
    if every_element_distinct(layer):
        return rows * cols
    return _counted(replace(layer, name="", line=None), (m_start, m_stop, k_start, k_stop))


def _whole_windows(layer: Layer, m_start: int, m_stop: int) -> int:
    """Distinct inputs of rows ``[m_start, m_stop)`` with every column: whole windows, so every
    channel of each input pixel under one; the pixels are found as the output pixels' corners,
    placed at their strides and spread over an ``R x S`` box (by 2-D running sums), on the input
    rows the windows can reach."""
    eh, ew = np.divmod(np.arange(m_start, m_stop, dtype=np.int64), layer.ofmap_width)
    top, left = eh * layer.stride_height, ew * layer.stride_width
    inside = (top < layer.ifmap_height) & (left < layer.ifmap_width)  # a window past the edge reads nothing
    if not inside.any():
        return 0
    first = int(top[0])
    rows = min(layer.ifmap_height, int(top[inside][-1]) + layer.filter_height) - first
    corners = np.zeros((rows + 1, layer.ifmap_width + 1), dtype=np.int64)
    corners[top[inside] - first + 1, left[inside] + 1] = 1
    sums = corners.cumsum(axis=0).cumsum(axis=1)  # sums[h, w]: corners above and left of (h, w)
    h = np.arange(1, rows + 1)[:, None]
    w = np.arange(1, layer.ifmap_width + 1)[None, :]
    above, before = np.maximum(h - layer.filter_height, 0), np.maximum(w - layer.filter_width, 0)
    under = sums[h, w] - sums[above, w] - sums[h, before] + sums[above, before]  # corners whose window covers (h, w)
    return int(np.count_nonzero(under)) * layer.channels


@functools.lru_cache(maxsize=1 << 14)
def _counted(layer: Layer, block: Block) -> int:
    """:func:`distinct_inputs` of a block, counted once per layer shape (mappers ask again and again)."""
    if block[2] == 0 and block[3] == layer.k:
        return _whole_windows(layer, block[0], block[1])
    return len(distinct_elements(layer, block))


def distinct_elements(layer: Layer, block: Block) -> np.ndarray:
    """The input elements (addresses, in elements) a block reads, sorted and each once."""
    reach = _span(layer, block)
    if reach is None or block[1] <= block[0] or block[3] <= block[2]:  # nothing, or past the bottom edge
        return np.zeros(0, dtype=np.int64)
    first, stop = reach
    seen = np.zeros(stop - first, dtype=bool)
    for address in addresses(layer, block):
        seen[address - first] = True
    return np.flatnonzero(seen) + first


def first_use_inputs(layer: Layer, blocks: Sequence[Block]) -> list[int]:
    """For each block in turn, the input elements it reads that no earlier block read.

    The blocks must not overlap in the matrix (they are the tiles of a partition, as folds are);
    their counts then sum to the distinct elements of everything they cover.
    """
    if every_element_distinct(layer):
        return [(m1 - m0) * (k1 - k0) for m0, m1, k0, k1 in blocks]
    seen = np.zeros(layer.ifmap_height * layer.ifmap_width * layer.channels, dtype=bool)
    counts = []
    for block in blocks:
        reach = _span(layer, block)
        if reach is None or block[1] <= block[0] or block[3] <= block[2]:
            counts.append(0)
            continue
        first, stop = reach
        before = int(np.count_nonzero(seen[first:stop]))
        for address in addresses(layer, block):
            seen[address] = True
        counts.append(int(np.count_nonzero(seen[first:stop])) - before)
    return counts


def every_element_distinct(layer: Layer) -> bool:
    """True when no two im2col entries read the same input element (a GEMM, or disjoint windows)."""
    apart_h = layer.ofmap_height == 1 or layer.stride_height >= layer.filter_height
    apart_w = layer.ofmap_width == 1 or layer.stride_width >= layer.filter_width
    return apart_h and apart_w and not _overhangs(layer)


def _window(layer: Layer, k_start: int, k_stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r, rest = np.divmod(np.arange(k_start, k_stop, dtype=np.int64), layer.filter_width * layer.channels)
    s, ch = np.divmod(rest, layer.channels)
    return r, s, ch


def _span(layer: Layer, block: Block) -> tuple[int, int] | None:
    """The addresses ``[first, stop)`` a block can reach (whole input rows), or None if none."""
    m_start, m_stop, k_start, k_stop = block
    row_elems = layer.ifmap_width * layer.channels
    r_min, r_max = (
        k_start // (layer.filter_width * layer.channels),
        (k_stop - 1) // (layer.filter_width * layer.channels),
    )
    first_row = (m_start // layer.ofmap_width) * layer.stride_height + r_min
    last_row = min(layer.ifmap_height - 1, ((m_stop - 1) // layer.ofmap_width) * layer.stride_height + r_max)
    if last_row < first_row:
        return None
    return first_row * row_elems, (last_row + 1) * row_elems


def addresses(layer: Layer, block: Block) -> Iterator[np.ndarray]:
    """The input addresses the block reads, in chunks (repeats included, overhangs left out)."""
    m_start, m_stop, k_start, k_stop = block
    r, s, ch = _window(layer, k_start, k_stop)
    c, w = layer.channels, layer.ifmap_width
    overhang = _overhangs(layer)
    step = max(1, _BLOCK_ELEMENTS // (k_stop - k_start))
    for first in range(m_start, m_stop, step):
        eh, ew = np.divmod(np.arange(first, min(first + step, m_stop), dtype=np.int64), layer.ofmap_width)
        h = (eh * layer.stride_height)[:, None] + r[None, :]
        x = (ew * layer.stride_width)[:, None] + s[None, :]
        address = (h * w + x) * c + ch[None, :]
        if overhang:
            address = address[(h < layer.ifmap_height) & (x < w)]
        yield address.ravel()


def _overhangs(layer: Layer) -> bool:
    """True when the last window in a direction reaches past the input's edge."""
    return bool(
        (layer.ifmap_height - layer.filter_height) % layer.stride_height
        or (layer.ifmap_width - layer.filter_width) % layer.stride_width
    )
