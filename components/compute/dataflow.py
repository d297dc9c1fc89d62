"""How a systolic array maps a layer's GEMM: spatial and temporal extents, folds, cycles per fold.

This is SCALE-Sim's model. With an ``R_a x C_a`` array:

======== =============== =============== ============ ========================
dataflow spatial rows Sr spatial cols Sc temporal T   cycles per fold
======== =============== =============== ============ ========================
os       M               N               K            ``T + R_a + C_a - 2``
ws       K               N               M            ``2 R_a + C_a + T - 2``
is       K               M               N            ``2 R_a + C_a + T - 2``
======== =============== =============== ============ ========================

``ceil(Sr/R_a) * ceil(Sc/C_a)`` folds, each padded to the full array, run one after the other,
column fold outer and row fold inner. The closed form :meth:`Mapping.ideal_cycles` is the oracle
the event model must equal when memory is ideal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from desim.workload import Layer, Share

DATAFLOWS = ("os", "ws", "is")


@dataclass(frozen=True)
class Mapping:
    """A layer mapped onto an array with one dataflow."""

    dataflow: str
    rows: int
    cols: int
    spatial_rows: int
    spatial_cols: int
    temporal: int

    @property
    def row_folds(self) -> int:
        return -(-self.spatial_rows // self.rows)

    @property
    def col_folds(self) -> int:
        return -(-self.spatial_cols // self.cols)

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds

    @property
    def cycles_per_fold(self) -> int:
        if self.dataflow == "os":
            return self.temporal + self.rows + self.cols - 2
        return 2 * self.rows + self.cols + self.temporal - 2

    def ideal_cycles(self) -> int:
        """Cycles the layer takes with ideal memory: every fold back to back."""
        return self.folds * self.cycles_per_fold

    def mapping_efficiency(self) -> float:
        """Mean over folds of the fraction of PEs mapped (``used_rows * used_cols / (R_a*C_a)``)."""
        return self.spatial_rows * self.spatial_cols / (self.folds * self.rows * self.cols)

    def folds_in_order(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per fold, in execution order: row-fold index, column-fold index, used rows, used cols."""
        row_fold = np.tile(np.arange(self.row_folds, dtype=np.int64), self.col_folds)
        col_fold = np.repeat(np.arange(self.col_folds, dtype=np.int64), self.row_folds)
        used_rows = np.minimum(self.rows, self.spatial_rows - row_fold * self.rows)
        used_cols = np.minimum(self.cols, self.spatial_cols - col_fold * self.cols)
        return row_fold, col_fold, used_rows, used_cols


def map_layer(layer: Layer, rows: int, cols: int, dataflow: str, share: Share | None = None) -> Mapping:
    """Map ``layer`` (or ``share`` of it) onto a ``rows x cols`` array with ``dataflow`` (``os``, ``ws`` or ``is``)."""
    m, n, k = (share.m, share.n, layer.k) if share is not None else (layer.m, layer.n, layer.k)
    extents = {"os": (m, n, k), "ws": (k, n, m), "is": (k, m, n)}
    if dataflow not in extents:
        raise ValueError(f"unknown dataflow {dataflow!r}; expected one of {', '.join(DATAFLOWS)}")
    sr, sc, t = extents[dataflow]
    return Mapping(dataflow, rows, cols, sr, sc, t)
