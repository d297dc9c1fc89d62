"""A layer's fold schedule as the array executes it: steps, operand tiles and their bytes.

Precomputed with numpy before time starts, so the event loop only reads numbers.

Each fold needs one tile of each input operand and produces one block of results:

=== ================================ ================================ =========================
df  IFMAP tile (reused while equal)  FILTER tile                      results per fold
=== ================================ ================================ =========================
os  row fold: its M rows, all of K   column fold: all of K, its N     used_rows x used_cols
ws  row fold: all of M, its K cols   the fold's own K x N block       M x used_cols (psums)
is  the fold's own K x M block       row fold: its K rows, all of N   used_cols x N (psums)
=== ================================ ================================ =========================

IFMAP tile bytes are the distinct input elements the tile touches (see ``ifmap_footprint``).
As in SCALE-Sim, every fold's results (partial sums included) go to the OFMAP buffer and on to
memory. A fold whose tile or results exceed what its buffer can stage at once (half of it, when
double-buffered) is split into equal *steps*: the tile streams through the buffer in parts while
the fold's cycles are shared out between the steps. A tile that fits is fetched once for a run of
consecutive folds that use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from desim.components.compute.dataflow import Mapping
from desim.components.compute.ifmap_footprint import distinct_inputs
from desim.errors import DesimError
from desim.workload import Layer

MAX_STEPS = 1 << 23
"""Most steps a layer's schedule may have (each is a tuple held in memory while the layer runs)."""


@dataclass(frozen=True)
class FoldSchedule:
    """The steps of one layer and the runs of tiles each input buffer must fetch.

    ``steps`` holds one tuple per step: ``(cycles, ifmap_run, ifmap_last, filter_run,
    filter_last, ofmap_bytes, ifmap_reads, filter_reads, ofmap_writes)``, where ``*_run`` is the
    index of the tile run the step reads, ``*_last`` whether it is that run's last step, and the
    SRAM counts (in words, SCALE-Sim's definitions) are booked on a fold's last step.
    """

    mapping: Mapping
    steps: list[tuple[int, int, bool, int, bool, int, int, int, int]]
    ifmap_runs: list[int]
    filter_runs: list[int]
    used_pes: int
    """Sum over folds of used_rows * used_cols."""


def build_schedule(layer: Layer, mapping: Mapping, word_bytes: int, max_bytes: dict[str, int]) -> FoldSchedule:
    """Schedule ``layer`` on ``mapping``; ``max_bytes[operand]`` is what its buffer stages at once.

    Tiles are split on word boundaries, so every run and result block is whole words.
    """
    max_elems = {operand: max(1, nbytes // word_bytes) for operand, nbytes in max_bytes.items()}
    row_fold, col_fold, used_rows, used_cols = mapping.folds_in_order()
    folds = len(row_fold)
    rows, cols, t = mapping.rows, mapping.cols, mapping.temporal
    everything = np.arange(folds, dtype=np.int64)

    if mapping.dataflow == "ws":
        ifmap_tile = row_fold
        per_row_fold = [
            distinct_inputs(layer, 0, layer.m, r * rows, r * rows + int(used_rows[r])) for r in range(mapping.row_folds)
        ]
        ifmap_elems = np.asarray(per_row_fold, dtype=np.int64)[row_fold]
        filter_tile, filter_elems = everything, used_rows * used_cols
        ofmap_elems = used_cols * t
        reads = (used_rows * t, used_rows * used_cols, used_cols * t)
    elif mapping.dataflow == "os":
        ifmap_tile = row_fold
        per_row_fold = [
            distinct_inputs(layer, r * rows, r * rows + int(used_rows[r]), 0, layer.k) for r in range(mapping.row_folds)
        ]
        ifmap_elems = np.asarray(per_row_fold, dtype=np.int64)[row_fold]
        filter_tile, filter_elems = col_fold, used_cols * t
        ofmap_elems = used_rows * used_cols
        reads = (used_rows * t, used_cols * t, used_rows * used_cols)
    else:  # "is": IFMAP stationary, rows span K and columns span M
        ifmap_tile = everything
        ifmap_elems = np.asarray(
            [
                distinct_inputs(layer, c * cols, c * cols + uc, r * rows, r * rows + ur)
                for r, c, ur, uc in zip(
                    row_fold.tolist(), col_fold.tolist(), used_rows.tolist(), used_cols.tolist(), strict=True
                )
            ],
            dtype=np.int64,
        )
        filter_tile, filter_elems = row_fold, used_rows * t
        ofmap_elems = used_cols * t
        reads = (used_rows * used_cols, used_rows * t, used_cols * t)

    parts = np.maximum.reduce(
        [
            np.ones(folds, dtype=np.int64),
            -(-ifmap_elems // max_elems["ifmap"]),
            -(-filter_elems // max_elems["filter"]),
            -(-ofmap_elems // max_elems["ofmap"]),
        ]
    )
    if parts.sum() > MAX_STEPS:
        smallest = min(max_bytes, key=max_bytes.get)
        raise DesimError(
            f"layer {layer.name!r} would stream in {int(parts.sum()):,} steps through buffers this small "
            f"(at most {MAX_STEPS:,}); give the {smallest} scratchpad more capacity"
        )
    fold_of = np.repeat(everything, parts)
    part = np.arange(len(fold_of), dtype=np.int64) - np.repeat(np.cumsum(parts) - parts, parts)
    n = parts[fold_of]
    last_part = part == n - 1

    ifmap_run, ifmap_last, ifmap_runs = _runs(ifmap_tile, ifmap_elems, max_elems["ifmap"], fold_of, part, n)
    filter_run, filter_last, filter_runs = _runs(filter_tile, filter_elems, max_elems["filter"], fold_of, part, n)
    cycles = _share(np.full(folds, mapping.cycles_per_fold, dtype=np.int64)[fold_of], part, n)
    out = _share(ofmap_elems[fold_of], part, n) * word_bytes
    booked = [np.where(last_part, counts[fold_of], 0) for counts in reads]

    steps = list(
        zip(
            cycles.tolist(),
            ifmap_run.tolist(),
            ifmap_last.tolist(),
            filter_run.tolist(),
            filter_last.tolist(),
            out.tolist(),
            *(b.tolist() for b in booked),
            strict=True,
        )
    )
    return FoldSchedule(
        mapping,
        steps,
        [elems * word_bytes for elems in ifmap_runs],
        [elems * word_bytes for elems in filter_runs],
        int((used_rows * used_cols).sum()),
    )


def _share(total: np.ndarray, part: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Step ``part`` of ``n``'s share of ``total``: near-equal integers that sum to ``total``."""
    return total * (part + 1) // n - total * part // n


def _runs(
    tile: np.ndarray, elems: np.ndarray, max_elems: int, fold_of: np.ndarray, part: np.ndarray, n: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Group steps into runs that read the same staged data.

    A tile that fits (``elems <= max_elems``) is one run for as long as consecutive steps use it;
    one that does not streams in ``n`` parts, each its own run. Returns, per step, the run index and
    whether it is the run's last step, and the elements of each run.
    """
    whole = (elems <= max_elems)[fold_of]
    key_tile = np.where(whole, tile[fold_of], -1 - fold_of)
    key_part = np.where(whole, 0, part)
    step_elems = np.where(whole, elems[fold_of], _share(elems[fold_of], part, n))
    starts = np.ones(len(fold_of), dtype=bool)
    starts[1:] = (key_tile[1:] != key_tile[:-1]) | (key_part[1:] != key_part[:-1])
    run = np.cumsum(starts) - 1
    last = np.ones(len(fold_of), dtype=bool)
    last[:-1] = starts[1:]
    return run, last, step_elems[starts].tolist()
