"""Where a layer's tiles lie in its tensors: the data identity of what the array's buffers move.

The array lays its operands out row-major, each in its tensor's region (see :mod:`desim.data`):
IFMAP as the input ``H x W x C`` (channel fastest), FILTER as the ``K x N`` matrix, OFMAP as the
``M x N`` matrix, and OFMAP's partial sums (tensor ``psum``) as that matrix again, at the
accumulator's width. A tile is a block of the GEMM view of an operand; an IFMAP block
moves the distinct input elements its im2col entries read (see ``ifmap_footprint``). A step that
streams a tile in parts moves the part's share of the tile's bytes, in address order. Extents are
worked out only when something asks for them (a storage level, a DRAM with rows).
"""

from __future__ import annotations

import numpy as np

from desim.components.compute.ifmap_footprint import Block, distinct_elements
from desim.data import PSUM, Tile, element_extents, tensor_base
from desim.workload import Layer


class LayerTiles:
    """The tiles of one layer's operands, made on request and kept, for words of ``word_bytes``."""

    def __init__(self, layer: Layer, word_bytes: int) -> None:
        self.layer = layer
        self.word_bytes = word_bytes
        self._blocks: dict[tuple, Tile] = {}

    def ifmap(self, block: Block, count: int) -> Tile:
        """The distinct input elements an im2col block reads (``count`` of them)."""
        key = ("ifmap", block)
        if key not in self._blocks:
            self._blocks[key] = Tile("ifmap", count * self.word_bytes, make=lambda: self._ifmap_extents(block))
        return self._blocks[key]

    def _ifmap_extents(self, block: Block) -> np.ndarray:
        return element_extents(distinct_elements(self.layer, block), self.word_bytes, tensor_base("ifmap"))

    def ifmap_first_uses(self, blocks: list[Block], counts: list[int]) -> list[Tile | None]:
        """For each block in turn, the input elements no earlier block read (``counts`` of them)."""
        made: list[np.ndarray] = []

        def extents(i: int) -> np.ndarray:
            if not made:
                seen = np.zeros(self.layer.ifmap_elements, dtype=bool)
                for block in blocks:
                    elements = distinct_elements(self.layer, block)
                    new = elements[~seen[elements]]
                    seen[new] = True
                    made.append(element_extents(new, self.word_bytes, tensor_base("ifmap")))
            return made[i]

        return [
            Tile("ifmap", count * self.word_bytes, make=lambda i=i: extents(i)) if count else None
            for i, count in enumerate(counts)
        ]

    def matrix(
        self, tensor: str, columns: int, rows: tuple[int, int], cols: tuple[int, int], *, psums: int = 0
    ) -> Tile:
        """Rows ``[r0, r1)`` and columns ``[c0, c1)`` of a row-major matrix with ``columns`` columns.

        With ``psums`` (their width in bytes), the block's partial sums instead: the same block of
        the ``psum`` tensor.
        """
        key = (tensor, rows, cols, psums)
        if key not in self._blocks:
            (r0, r1), (c0, c1) = rows, cols
            word = psums or self.word_bytes
            named = PSUM if psums else tensor
            base = tensor_base(named)
            nbytes = (r1 - r0) * (c1 - c0) * word
            self._blocks[key] = Tile(named, nbytes, make=lambda: _matrix_extents(base, word, columns, rows, cols))
        return self._blocks[key]


def _matrix_extents(base: int, word: int, columns: int, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    (r0, r1), (c0, c1) = rows, cols
    if c0 == 0 and c1 == columns:  # whole rows lie end to end
        return np.array([[base + r0 * columns * word, base + r1 * columns * word]], dtype=np.int64)
    starts = (np.arange(r0, r1, dtype=np.int64) * columns + c0) * word + base
    return np.stack((starts, starts + (c1 - c0) * word), axis=1)


def share(tile: Tile, part: int, parts: int, elements: int, word_bytes: int) -> Tile:
    """Part ``part`` of ``parts`` of a tile of ``elements`` words: near-equal shares in address order."""
    if parts == 1:
        return tile
    first, stop = elements * part // parts, elements * (part + 1) // parts
    return tile.part(first * word_bytes, (stop - first) * word_bytes)
