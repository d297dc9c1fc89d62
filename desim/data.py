"""Data identity: every request names the tensor it moves and which of its bytes, as a :class:`Tile`.

A layer's tensors (its operands, ``ifmap``, ``filter`` and ``ofmap``) each own a region of the
address space whose base is derived from the tensor's name (:func:`tensor_base`), never from the
order anything is listed in. Within its region a tensor is laid out row-major, as the compute
unit that produces the tiles defines (the systolic array: IFMAP ``H x W x C`` channel fastest,
FILTER ``K x N``, OFMAP ``M x N``). Partial sums are a tensor of their own, ``psum``, laid out
as OFMAP is but at the accumulator's width; they belong to the OFMAP operand (:func:`operand_of`).

A tile is the set of a tensor's bytes one request moves, given as sorted, disjoint byte
*extents* ``[start, stop)``. Reading the same tile twice names the same addresses, so any
storage level can hold it and a DRAM sees its real rows and banks. Extents are often costly to
work out (an IFMAP tile's distinct input pixels), and most systems never look at them, so a tile
may be given a function that makes them on first use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np

from desim.workload import OPERANDS, Layer

TENSOR_SPACE = 1 << 40
"""Bytes of address space each tensor's region spans (more than any tensor desim accepts)."""
PSUM = "psum"
"""The tensor of a layer's partial sums: not its output, and perhaps wider than it."""


def tensor_base(tensor: str) -> int:
    """The first address of ``tensor``'s region: the operands in their fixed order, other names after them.

    Derived from the name alone, so no list order in a file can move a tensor.
    """
    if tensor in OPERANDS:
        return OPERANDS.index(tensor) * TENSOR_SPACE
    digest = int.from_bytes(hashlib.blake2b(tensor.encode("utf-8"), digest_size=8).digest(), "big") % (1 << 20)
    return (len(OPERANDS) + digest) * TENSOR_SPACE


def operand_of(tensor: str) -> str:
    """The operand a tensor's bytes belong to: partial sums to OFMAP, the operands to themselves."""
    return "ofmap" if tensor == PSUM else tensor


def tensor_bytes(layer: Layer, word_bytes: int, accumulator_bytes: int) -> dict[str, int]:
    """The size of each of a layer's tensors: the input, the ``K x N`` filters, the ``M x N``
    output, and the output's partial sums (should any leave the array's buffer)."""
    return {
        "ifmap": layer.ifmap_elements * word_bytes,
        "filter": layer.k * layer.n * word_bytes,
        "ofmap": layer.m * layer.n * word_bytes,
        PSUM: layer.m * layer.n * accumulator_bytes,
    }


class Tile:
    """``nbytes`` of ``tensor``, at the byte extents :meth:`extents` gives (absolute addresses).

    Args:
        tensor: the tensor's name (an operand, for the stock array).
        nbytes: how many bytes the tile holds; its extents add up to exactly this.
        extents: an ``(n, 2)`` integer array of ``[start, stop)`` addresses, sorted and disjoint;
            or ``None`` with ``make`` given, to work them out when first asked.
        make: a function returning the extents, called at most once.
    """

    __slots__ = ("_ends", "_extents", "_make", "_parts", "nbytes", "tensor")

    def __init__(
        self,
        tensor: str,
        nbytes: int,
        extents: np.ndarray | None = None,
        make: Callable[[], np.ndarray] | None = None,
    ) -> None:
        if (extents is None) == (make is None):
            raise ValueError("give a tile its extents or a function that makes them, not both")
        self.tensor = tensor
        self.nbytes = nbytes
        self._extents = extents
        self._make = make
        self._ends: np.ndarray | None = None
        self._parts: dict[tuple[int, int], Tile] | None = None

    @classmethod
    def span(cls, tensor: str, offset: int, nbytes: int) -> Tile:
        """The ``nbytes`` of ``tensor`` from byte ``offset`` of its region on, contiguous."""
        start = tensor_base(tensor) + offset
        return cls(tensor, nbytes, np.array([[start, start + nbytes]], dtype=np.int64))

    def __repr__(self) -> str:
        return f"<Tile {self.tensor} {self.nbytes} B>"

    def extents(self) -> np.ndarray:
        """The tile's bytes as ``[start, stop)`` address pairs, sorted and disjoint."""
        if self._extents is None:
            made = self._make()
            self._make = None
            moved = int((made[:, 1] - made[:, 0]).sum())
            if moved != self.nbytes:
                raise AssertionError(f"{self!r}: its extents hold {moved} bytes")
            self._extents = made
        return self._extents

    def _cumulative(self) -> np.ndarray:
        """Bytes of the tile before the end of each extent."""
        if self._ends is None:
            extents = self.extents()
            self._ends = np.cumsum(extents[:, 1] - extents[:, 0])
        return self._ends

    def address_at(self, offset: int) -> int:
        """The address of the tile's byte ``offset`` (counted in extent order)."""
        extents, ends = self.extents(), self._cumulative()
        i = int(np.searchsorted(ends, offset, side="right"))
        before = int(ends[i - 1]) if i else 0
        return int(extents[i, 0]) + offset - before

    def part(self, offset: int, nbytes: int) -> Tile:
        """Bytes ``[offset, offset + nbytes)`` of the tile (in extent order), as a tile of their own.

        Asking for the same part twice gives the same tile.
        """
        if offset == 0 and nbytes == self.nbytes:
            return self
        if self._parts is None:
            self._parts = {}
        key = (offset, nbytes)
        if key not in self._parts:
            self._parts[key] = Tile(
                self.tensor, nbytes, make=lambda: cut(self.extents(), self._cumulative(), offset, nbytes)
            )
        return self._parts[key]


def cut(extents: np.ndarray, ends: np.ndarray, offset: int, nbytes: int) -> np.ndarray:
    """Bytes ``[offset, offset + nbytes)`` of ``extents`` (whose running totals are ``ends``)."""
    first = int(np.searchsorted(ends, offset, side="right"))
    last = int(np.searchsorted(ends, offset + nbytes, side="left"))
    piece = extents[first : last + 1].copy()
    before = int(ends[first - 1]) if first else 0
    piece[0, 0] += offset - before
    piece[-1, 1] -= int(ends[last]) - (offset + nbytes)
    return piece


def element_extents(elements: np.ndarray, word_bytes: int, base: int) -> np.ndarray:
    """Byte extents of sorted, distinct element indices of a tensor whose region starts at ``base``."""
    if not len(elements):
        return np.zeros((0, 2), dtype=np.int64)
    breaks = np.flatnonzero(np.diff(elements) != 1) + 1
    starts = elements[np.concatenate(([0], breaks))]
    stops = elements[np.concatenate((breaks - 1, [len(elements) - 1]))] + 1
    return np.stack((starts, stops), axis=1).astype(np.int64) * word_bytes + base


def runs(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``starts[i], starts[i] + 1, ...`` (``counts[i]`` numbers) for each ``i`` in turn, as one array."""
    ends = np.cumsum(counts)
    return np.repeat(starts - (ends - counts), counts) + np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64)


def lines_of(extents: np.ndarray, line_bytes: int, base: int) -> np.ndarray:
    """The distinct ``line_bytes`` lines (numbered from ``base``) that ``extents`` touch, sorted."""
    if not len(extents):
        return np.zeros(0, dtype=np.int64)
    first = (extents[:, 0] - base) // line_bytes
    last = (extents[:, 1] - 1 - base) // line_bytes
    if len(extents) == 1:
        return np.arange(first[0], last[0] + 1, dtype=np.int64)
    # Extents are sorted and disjoint: a line two of them share is the last of one and the first of
    # the next, so starting each after the previous one's last line lists every line once.
    first[1:] = np.maximum(first[1:], last[:-1] + 1)
    return runs(first, np.maximum(last - first + 1, 0))


def line_extents(lines: np.ndarray, line_bytes: int, base: int, limit: int) -> np.ndarray:
    """Byte extents of sorted line numbers, the last line cut at ``limit`` bytes into the region."""
    extents = element_extents(lines, line_bytes, base)
    if len(extents):
        extents[-1, 1] = min(int(extents[-1, 1]), base + limit)
    return extents
