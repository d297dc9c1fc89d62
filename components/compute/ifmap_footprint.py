"""Which input bytes a block of the im2col IFMAP matrix really touches.

Row ``m`` of the ``M x K`` IFMAP matrix is output pixel ``(eh, ew)``; column ``k`` is window
element ``(r, s, c)``, channel fastest. Together they read input element ``(eh*sh + r,
ew*sw + s, c)``, stored channel-fastest at address ``((eh*sh + r)*W + ew*sw + s)*C + c``. Windows of
neighbouring pixels overlap, so a block of the matrix repeats input elements: fetching the block
from DRAM moves only its distinct ones. This module counts them exactly. Window positions past
the input's edge (SCALE-Sim's last window may overhang when the stride does not divide
``H - R``) read nothing and are not counted.
"""

from __future__ import annotations

import numpy as np

from desim.workload import Layer

_BLOCK_ELEMENTS = 1 << 21  # addresses materialised at once, to bound memory on large blocks


def distinct_inputs(layer: Layer, m_start: int, m_stop: int, k_start: int, k_stop: int) -> int:
    """Distinct input elements read by rows ``[m_start, m_stop)`` and columns ``[k_start, k_stop)``."""
    rows, cols = m_stop - m_start, k_stop - k_start
    if rows <= 0 or cols <= 0:
        return 0
    overhang = _overhangs(layer)
    if _windows_disjoint(layer) and not overhang:
        return rows * cols
    c, w = layer.channels, layer.ifmap_width
    r, rest = np.divmod(np.arange(k_start, k_stop, dtype=np.int64), layer.filter_width * c)
    s, ch = np.divmod(rest, c)
    # Only the input rows the block can reach need a slot in the mask.
    first_row = (m_start // layer.ofmap_width) * layer.stride_height + int(r.min())
    last_row = ((m_stop - 1) // layer.ofmap_width) * layer.stride_height + int(r.max())
    rows_spanned = min(layer.ifmap_height, last_row + 1) - first_row
    if rows_spanned <= 0:  # every window of the block lies past the bottom edge
        return 0
    seen = np.zeros(rows_spanned * w * c, dtype=bool)
    step = max(1, _BLOCK_ELEMENTS // cols)
    for first in range(m_start, m_stop, step):
        eh, ew = np.divmod(np.arange(first, min(first + step, m_stop), dtype=np.int64), layer.ofmap_width)
        h = (eh * layer.stride_height)[:, None] + r[None, :]
        x = (ew * layer.stride_width)[:, None] + s[None, :]
        address = ((h - first_row) * w + x) * c + ch[None, :]
        if overhang:
            address = address[(h < layer.ifmap_height) & (x < w)]
        seen[address.ravel()] = True
    return int(np.count_nonzero(seen))


def _overhangs(layer: Layer) -> bool:
    """True when the last window in a direction reaches past the input's edge."""
    return bool(
        (layer.ifmap_height - layer.filter_height) % layer.stride_height
        or (layer.ifmap_width - layer.filter_width) % layer.stride_width
    )


def _windows_disjoint(layer: Layer) -> bool:
    """True when no two output pixels' windows share an input element (a GEMM, or stride >= filter)."""
    apart_h = layer.ofmap_height == 1 or layer.stride_height >= layer.filter_height
    apart_w = layer.ofmap_width == 1 or layer.stride_width >= layer.filter_width
    return apart_h and apart_w
