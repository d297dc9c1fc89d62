"""How a systolic array maps a layer's GEMM: spatial and temporal extents, loop order, folds, cycles.

This is SCALE-Sim's model, with the temporal dimension tiled. With an ``R_a x C_a`` array:

======== =============== =============== ============ ==========================
dataflow spatial rows Sr spatial cols Sc temporal T   cycles of a fold of ``t``
======== =============== =============== ============ ==========================
os       M               N               K            ``t + R_a + C_a - 2``
ws       K               N               M            ``2 R_a + C_a + t - 2``
is       K               M               N            ``2 R_a + C_a + t - 2``
======== =============== =============== ============ ==========================

A *fold* is one row fold (``R_a`` of Sr), one column fold (``C_a`` of Sc) and one temporal tile
(``t`` of T, the mapping's ``tile``): ``ceil(Sr/R_a) * ceil(Sc/C_a) * ceil(T/t)`` folds, each
padded to the full array and paying its fill and drain, run one after the other in the mapping's
loop *order* (outer to inner, over the GEMM dimensions M, N and K). SCALE-Sim's mapping is one
temporal tile of all of T, column fold outer and row fold inner. The closed form
:meth:`Mapping.ideal_cycles` is the oracle the event model must equal when memory is ideal.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import permutations

import numpy as np

from desim.workload import Layer, Share

DATAFLOWS = ("os", "ws", "is")
DIMS = {"os": ("M", "N", "K"), "ws": ("K", "N", "M"), "is": ("K", "M", "N")}
"""Per dataflow, the GEMM dimension on the array's rows, on its columns, and in time."""
ORDERS = tuple("".join(order) for order in permutations("MNK"))
"""Every loop order over the GEMM dimensions, outer to inner."""


@dataclass(frozen=True)
class Folds:
    """A mapping's folds in execution order: per fold, its index along each loop and what it uses."""

    row_fold: np.ndarray
    col_fold: np.ndarray
    tile: np.ndarray
    """Which temporal tile the fold computes."""
    used_rows: np.ndarray
    used_cols: np.ndarray
    used_t: np.ndarray
    """The fold's temporal extent: the mapping's tile, or what is left of T in the last one."""

    def index(self, dim: str, dataflow: str) -> np.ndarray:
        """Per fold, its block index along GEMM dimension ``dim`` (``M``, ``N`` or ``K``)."""
        return (self.row_fold, self.col_fold, self.tile)[DIMS[dataflow].index(dim)]


@dataclass(frozen=True)
class Mapping:
    """A layer mapped onto an array with one dataflow, a temporal tile and a loop order."""

    dataflow: str
    rows: int
    cols: int
    spatial_rows: int
    spatial_cols: int
    temporal: int
    tile: int = 0
    """Temporal extent of a fold (0: all of T, as SCALE-Sim)."""
    order: str = ""
    """The loop order over M, N and K, outer to inner ("": SCALE-Sim's, column fold outer)."""
    mapper: str = "scalesim"
    """The mapper that chose it, for the reports."""
    storage_tiles: bool = False
    """Whether an input that does not fit its buffer may be held in storage-level tiles spanning
    several folds (see ``fold_schedule``), rather than fetched fold by fold as SCALE-Sim does."""

    def chosen_by(self, mapper: str) -> Mapping:
        """This mapping, as the one ``mapper`` chose."""
        return replace(self, mapper=mapper)

    def __post_init__(self) -> None:
        if not self.tile or self.tile > self.temporal:
            object.__setattr__(self, "tile", self.temporal)
        if not self.order:
            rows, cols, temporal = DIMS[self.dataflow]
            object.__setattr__(self, "order", cols + rows + temporal)

    @property
    def dims(self) -> tuple[str, str, str]:
        """The GEMM dimension on the rows, on the columns, and in time."""
        return DIMS[self.dataflow]

    @property
    def row_folds(self) -> int:
        return -(-self.spatial_rows // self.rows)

    @property
    def col_folds(self) -> int:
        return -(-self.spatial_cols // self.cols)

    @property
    def tiles(self) -> int:
        """Temporal tiles: ``ceil(T / tile)``."""
        return -(-self.temporal // self.tile)

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds * self.tiles

    @property
    def reduces(self) -> bool:
        """Whether results are summed over several folds (K is split among them): partial sums."""
        return self.extent("K") > self.block("K")

    @property
    def fill_drain(self) -> int:
        """Cycles a fold costs beyond its temporal extent: loading, filling and draining the array."""
        if self.dataflow == "os":
            return self.rows + self.cols - 2
        return 2 * self.rows + self.cols - 2

    @property
    def cycles_per_fold(self) -> int:
        """Cycles of a fold with a whole temporal tile."""
        return self.fill_drain + self.tile

    def ideal_cycles(self) -> int:
        """Cycles the layer takes with ideal memory: every fold back to back."""
        return self.folds * self.fill_drain + self.row_folds * self.col_folds * self.temporal

    def mapping_efficiency(self) -> float:
        """Mean over folds of the fraction of PEs mapped (``used_rows * used_cols / (R_a*C_a)``)."""
        return self.spatial_rows * self.spatial_cols / (self.row_folds * self.col_folds * self.rows * self.cols)

    def extent(self, dim: str) -> int:
        """The GEMM dimension's size (M, N or K) as this mapping sees it."""
        return (self.spatial_rows, self.spatial_cols, self.temporal)[self.dims.index(dim)]

    def block(self, dim: str) -> int:
        """How much of ``dim`` one fold covers: the array's rows or columns, or the temporal tile."""
        return (self.rows, self.cols, self.tile)[self.dims.index(dim)]

    def folds_in_order(self) -> Folds:
        """Every fold, in execution order."""
        counts = {"row": self.row_folds, "col": self.col_folds, "tile": self.tiles}
        loop_of = dict(zip(self.dims, ("row", "col", "tile"), strict=True))
        loops = [loop_of[dim] for dim in self.order]
        grid = np.indices([counts[loop] for loop in loops], dtype=np.int64).reshape(3, -1)
        index = dict(zip(loops, grid, strict=True))
        row_fold, col_fold, tile = index["row"], index["col"], index["tile"]
        return Folds(
            row_fold,
            col_fold,
            tile,
            np.minimum(self.rows, self.spatial_rows - row_fold * self.rows),
            np.minimum(self.cols, self.spatial_cols - col_fold * self.cols),
            np.minimum(self.tile, self.temporal - tile * self.tile),
        )


def map_layer(
    layer: Layer,
    rows: int,
    cols: int,
    dataflow: str,
    share: Share | None = None,
    *,
    tile: int = 0,
    order: str = "",
    mapper: str = "scalesim",
    storage_tiles: bool = False,
) -> Mapping:
    """Map ``layer`` (or ``share`` of it) onto a ``rows x cols`` array with ``dataflow`` (``os``, ``ws`` or ``is``).

    By default SCALE-Sim's mapping; ``tile``, ``order`` and ``storage_tiles`` choose another.
    """
    m, n, k = (share.m, share.n, layer.k) if share is not None else (layer.m, layer.n, layer.k)
    if dataflow not in DIMS:
        raise ValueError(f"unknown dataflow {dataflow!r}; expected one of {', '.join(DATAFLOWS)}")
    size = {"M": m, "N": n, "K": k}
    sr, sc, t = (size[dim] for dim in DIMS[dataflow])
    return Mapping(dataflow, rows, cols, sr, sc, t, tile, order, mapper, storage_tiles)
