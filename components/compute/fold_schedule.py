"""A layer's fold schedule as the array executes it: steps, the tiles they need, and the traffic.

Precomputed with numpy before time starts, so the event loop only reads numbers.

Each fold needs one tile of each input operand and produces (or updates) a block of results:

=== ================================ ================================ ============================
df  IFMAP tile                       FILTER tile                      results
=== ================================ ================================ ============================
os  row fold: its M rows, all of K   column fold: all of K, its N     final, per fold
ws  row fold: all of M, its K cols   the fold's own K x N block       psums of the column fold's
                                                                      M x N block, summed over K
is  the fold's own K x M block       row fold: its K rows, all of N   likewise, M x N block
=== ================================ ================================ ============================

**Input tiles know their bytes.** An IFMAP tile moves the distinct input elements it touches
(see ``ifmap_footprint``), not its im2col entries. An operand whose distinct bytes fit its
buffer is *resident*: each tile fetches only what no earlier tile brought, and nothing leaves
until the layer ends, so the operand is read from DRAM exactly once. Otherwise tiles *stream*:
a tile is fetched for each run of consecutive folds that use it and leaves after the run. (The
ws and os IFMAP and the is FILTER tiles come back once per column fold; between two uses of one
tile come all the others, which together with it do not fit, so no upcoming use is within the
buffer's reach.)

**Partial sums stay while they fit.** A ws or is column fold accumulates one output block over
its row folds. If the block fits the half of the OFMAP buffer the array may stage, its room is
taken at the column fold's first step and it is written once, after the last row fold. If not,
it *spills*: every fold's share is written to DRAM and read back by the next row fold.

**Steps.** A fold whose streamed tile or spilled block exceeds what its buffer stages at once
(half of it) is split into equal steps; the fold's cycles are shared out between them. All
folds of a spilling column fold get the same number of steps, so each step reads back what the
same step of the previous row fold wrote.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from desim.components.compute.dataflow import Mapping
from desim.components.compute.ifmap_footprint import distinct_inputs, first_use_inputs
from desim.components.compute.tiles import LayerTiles, share
from desim.data import Tile
from desim.errors import DesimError
from desim.staging import StagingPlan
from desim.workload import Layer, Share

MAX_STEPS = 1 << 23
"""Most steps a layer's schedule may have (each is a tuple held in memory while the layer runs)."""


@dataclass(frozen=True)
class FoldSchedule:
    """The steps of one layer and each buffer's plan.

    ``steps`` holds one tuple per step: ``(cycles, ifmap_run, ifmap_release, filter_run,
    filter_release, ofmap_run, ofmap_write_bytes, ifmap_reads, filter_reads, ofmap_writes)``:
    the run of each buffer the step needs, whether to release the input runs after it, the
    bytes of results it hands to the OFMAP buffer to write, and the SRAM counts (in words,
    SCALE-Sim's definitions) booked on a fold's last step.
    """

    mapping: Mapping
    steps: list[tuple[int, int, bool, int, bool, int, int, int, int, int]]
    plans: dict[str, StagingPlan]
    used_pes: int
    """Sum over folds of used_rows * used_cols."""
    fold_of: np.ndarray
    """The fold each step belongs to."""


@dataclass(frozen=True)
class _Tiling:
    """What decides a layer's steps: per fold, its tiles and their elements, and its number of steps."""

    stage: dict[str, int]
    row_fold: np.ndarray
    col_fold: np.ndarray
    reads: tuple[np.ndarray, np.ndarray, np.ndarray]
    i_blocks: list[tuple[int, int, int, int]]
    i_counts: np.ndarray
    """Per IFMAP block, what its runs fetch: first-use elements if resident, else distinct ones."""
    f_blocks: list[tuple[tuple[int, int], tuple[int, int]]]
    o_blocks: list[tuple[tuple[int, int], tuple[int, int]]]
    o_block: np.ndarray
    i_tile: np.ndarray
    i_elems: np.ndarray
    i_resident: bool
    i_unique: int
    f_tile: np.ndarray
    f_elems: np.ndarray
    f_resident: bool
    f_unique: int
    reduces: bool
    block: np.ndarray
    spill: np.ndarray
    parts: np.ndarray
    used_pes: int


def _fold_tiles(mapping: Mapping) -> tuple[np.ndarray, ...]:
    """Per fold: row fold, column fold, used rows and columns, and the SRAM reads (SCALE-Sim's counts)."""
    row_fold, col_fold, used_rows, used_cols = mapping.folds_in_order()
    t = mapping.temporal
    reads = {
        "ws": (used_rows * t, used_rows * used_cols, used_cols * t),
        "os": (used_rows * t, used_cols * t, used_rows * used_cols),
        "is": (used_rows * used_cols, used_rows * t, used_cols * t),
    }[mapping.dataflow]
    return row_fold, col_fold, used_rows, used_cols, reads


def _stages(word_bytes: int, capacity: dict[str, int]) -> dict[str, int]:
    """Elements of each operand a buffer stages at once: half of it, in whole words."""
    return {operand: max(1, max(1, nbytes // word_bytes) // 2) for operand, nbytes in capacity.items()}


def _tiling(layer: Layer, mapping: Mapping, word_bytes: int, capacity: dict[str, int], share: Share) -> _Tiling:
    words = {operand: max(1, nbytes // word_bytes) for operand, nbytes in capacity.items()}
    stage = _stages(word_bytes, capacity)
    row_fold, col_fold, used_rows, used_cols, reads = _fold_tiles(mapping)
    folds = len(row_fold)
    rows, cols, t = mapping.rows, mapping.cols, mapping.temporal
    everything = np.arange(folds, dtype=np.int64)
    row_folds = mapping.row_folds

    # The folds' ranges of the spatial dimensions, and the share's ranges of M and N, in layer coordinates.
    rows_of = [(r * rows, r * rows + int(used_rows[r])) for r in range(row_folds)]
    cols_of = [(c * cols, c * cols + int(used_cols[c * row_folds])) for c in range(mapping.col_folds)]
    all_m, all_n, all_k = (share.m_start, share.m_stop), (share.n_start, share.n_stop), (0, layer.k)

    def in_m(span: tuple[int, int]) -> tuple[int, int]:
        return span[0] + share.m_start, span[1] + share.m_start

    def in_n(span: tuple[int, int]) -> tuple[int, int]:
        return span[0] + share.n_start, span[1] + share.n_start

    folds_rc = list(zip(row_fold.tolist(), col_fold.tolist(), strict=True))
    if mapping.dataflow == "ws":  # rows span K, columns N
        i_tile = row_fold
        i_blocks = [(*all_m, *k) for k in rows_of]
        f_tile, f_elems = everything, used_rows * used_cols
        f_blocks = [(rows_of[r], in_n(cols_of[c])) for r, c in folds_rc]
        o_block, o_blocks = col_fold, [(all_m, in_n(n)) for n in cols_of]
    elif mapping.dataflow == "os":  # rows span M, columns N
        i_tile = row_fold
        i_blocks = [(*in_m(m), *all_k) for m in rows_of]
        f_tile, f_elems = col_fold, used_cols * t
        f_blocks = [(all_k, in_n(n)) for n in cols_of]
        o_block = everything
        o_blocks = [(in_m(rows_of[r]), in_n(cols_of[c])) for r, c in folds_rc]
    else:  # "is": IFMAP stationary, rows span K and columns span M
        i_tile = everything
        i_blocks = [(*in_m(cols_of[c]), *rows_of[r]) for r, c in folds_rc]
        f_tile, f_elems = row_fold, used_rows * t
        f_blocks = [(k, all_n) for k in rows_of]
        o_block, o_blocks = col_fold, [(in_m(m), all_n) for m in cols_of]

    # Input operands: resident if their distinct elements fit, else streamed tile by tile.
    i_first = np.asarray(first_use_inputs(layer, i_blocks), dtype=np.int64)
    i_unique = int(i_first.sum())
    i_resident = i_unique <= words["ifmap"]
    i_counts = i_first if i_resident else np.asarray([distinct_inputs(layer, *b) for b in i_blocks], dtype=np.int64)
    i_elems = i_counts[i_tile]
    f_unique = layer.k * share.n
    f_resident = f_unique <= words["filter"]

    # Results: os folds write final outputs; ws/is column folds keep their block or spill it.
    reduces = mapping.dataflow != "os"
    block = used_cols * t if reduces else used_rows * used_cols
    spill = (block > stage["ofmap"]) if reduces else np.ones(folds, dtype=bool)

    parts = np.ones(folds, dtype=np.int64)
    if not i_resident:
        parts = np.maximum(parts, -(-i_elems // stage["ifmap"]))
    if not f_resident:
        parts = np.maximum(parts, -(-f_elems // stage["filter"]))
    parts = np.maximum(parts, np.where(spill, -(-block // stage["ofmap"]), 1))
    if reduces and spill.any():
        # Every fold of a spilling column fold takes as many steps as its largest.
        starts = np.flatnonzero(row_fold == 0)
        widest = np.maximum.reduceat(parts, starts)[col_fold]
        parts = np.where(spill, widest, parts)
    return _Tiling(
        stage,
        row_fold,
        col_fold,
        reads,
        i_blocks,
        i_counts,
        f_blocks,
        o_blocks,
        o_block,
        i_tile,
        i_elems,
        i_resident,
        i_unique,
        f_tile,
        f_elems,
        f_resident,
        f_unique,
        reduces,
        block,
        spill,
        parts,
        int((used_rows * used_cols).sum()),
    )


def check_steps(layer: Layer, mapping: Mapping, word_bytes: int, capacity: dict[str, int], share: Share) -> None:
    """Raise DesimError if the layer's schedule would have more than ``MAX_STEPS`` steps.

    Cheap for every layer that is far from the limit: an upper bound (every tile counted at its
    im2col size, every fold split as finely as the finest) settles most; only a layer whose bound
    passes the limit has its steps counted exactly.
    """
    reads = _fold_tiles(mapping)[-1]  # per fold: IFMAP block (im2col), FILTER block, result block
    stage = _stages(word_bytes, capacity)
    finest = max(
        int((-(-count // stage[op])).max()) for count, op in zip(reads, ("ifmap", "filter", "ofmap"), strict=True)
    )
    if mapping.folds * finest > MAX_STEPS:
        _refuse_steps(int(_tiling(layer, mapping, word_bytes, capacity, share).parts.sum()), capacity)


def _refuse_steps(steps: int, capacity: dict[str, int]) -> None:
    if steps > MAX_STEPS:
        smallest = min(capacity, key=capacity.get)
        raise DesimError(
            f"would stream in {steps:,} steps through buffers this small "
            f"(at most {MAX_STEPS:,}); give the {smallest} scratchpad more capacity"
        )


def build_schedule(
    layer: Layer, mapping: Mapping, word_bytes: int, capacity: dict[str, int], share: Share | None = None
) -> FoldSchedule:
    """Schedule ``share`` of ``layer`` (all of it by default) on ``mapping``, with ``capacity[operand]`` bytes of room.

    Runs and result shares are whole words.
    """
    share = share if share is not None else Share.whole(layer)
    tiling = _tiling(layer, mapping, word_bytes, capacity, share)
    parts, stage = tiling.parts, tiling.stage
    _refuse_steps(int(parts.sum()), capacity)
    row_fold, reduces, block, spill = tiling.row_fold, tiling.reduces, tiling.block, tiling.spill
    i_tile, i_elems, i_resident, i_unique = tiling.i_tile, tiling.i_elems, tiling.i_resident, tiling.i_unique
    f_tile, f_elems, f_resident, f_unique = tiling.f_tile, tiling.f_elems, tiling.f_resident, tiling.f_unique
    row_folds, folds = mapping.row_folds, mapping.folds
    everything = np.arange(folds, dtype=np.int64)
    fold_of = np.repeat(everything, parts)
    part = np.arange(len(fold_of), dtype=np.int64) - np.repeat(np.cumsum(parts) - parts, parts)
    n = parts[fold_of]
    last_part = part == n - 1

    tiles = LayerTiles(layer, word_bytes)
    counts = tiling.i_counts.tolist()
    if i_resident:
        i_blocks = tiles.ifmap_first_uses(tiling.i_blocks, counts)
    else:
        i_blocks = [tiles.ifmap(block, count) for block, count in zip(tiling.i_blocks, counts, strict=True)]
    f_blocks = [tiles.matrix("filter", layer.n, *block) for block in tiling.f_blocks]
    o_blocks = [tiles.matrix("ofmap", layer.n, *block) for block in tiling.o_blocks]
    i_run, i_release, i_plan = _input_plan(
        i_tile, i_elems, i_resident, i_unique, stage["ifmap"], fold_of, part, n, i_blocks, word_bytes
    )
    f_run, f_release, f_plan = _input_plan(
        f_tile, f_elems, f_resident, f_unique, stage["filter"], fold_of, part, n, f_blocks, word_bytes
    )
    o_run, o_write, o_plan = _ofmap_plan(
        share.m * share.n,
        reduces,
        block,
        spill,
        row_fold,
        row_folds,
        fold_of,
        part,
        n,
        tiling.o_block,
        o_blocks,
        word_bytes,
    )
    cycles = _share(np.full(folds, mapping.cycles_per_fold, dtype=np.int64)[fold_of], part, n)
    booked = [np.where(last_part, counts[fold_of], 0) for counts in tiling.reads]

    steps = list(
        zip(
            cycles.tolist(),
            i_run.tolist(),
            i_release.tolist(),
            f_run.tolist(),
            f_release.tolist(),
            o_run.tolist(),
            (o_write * word_bytes).tolist(),
            *(b.tolist() for b in booked),
            strict=True,
        )
    )
    plans = {
        operand: StagingPlan(
            [e * word_bytes for e in plan.fetch],
            [e * word_bytes for e in plan.hold],
            plan.resident,
            plan.unique_bytes * word_bytes,
            plan.tiles,
            capacity[operand],
            plan.after_write,
            plan.writes,
        )
        for operand, plan in (("ifmap", i_plan), ("filter", f_plan), ("ofmap", o_plan))
    }
    return FoldSchedule(mapping, steps, plans, tiling.used_pes, fold_of)


def _share(total: np.ndarray, part: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Step ``part`` of ``n``'s share of ``total``: near-equal integers that sum to ``total``."""
    return total * (part + 1) // n - total * part // n


def _input_plan(
    tile: np.ndarray,
    elems: np.ndarray,
    resident: bool,
    unique: int,
    stage: int,
    fold_of: np.ndarray,
    part: np.ndarray,
    n: np.ndarray,
    blocks: list[Tile | None],
    word_bytes: int,
) -> tuple[np.ndarray, np.ndarray, StagingPlan]:
    """Per step, the run it reads and whether to release it after; and the plan (in elements,
    its budget left for :func:`build_schedule` to fill in).

    Resident: one run per tile, at its first use (tiles are numbered in order of first use), which
    fetches ``blocks[tile]``: what no earlier tile brought. Streaming: a tile that fits the stage
    is one run for as long as consecutive steps use it, fetching ``blocks[tile]``; one that does
    not streams in ``n`` parts, each its own run with its share of the tile.
    """
    steps = len(fold_of)
    if resident:
        run = tile[fold_of]
        first = np.zeros(int(tile.max()) + 1, dtype=np.int64)
        first[tile] = elems  # every use of a tile has the same count: its first use's
        runs = first.tolist()
        return run, np.zeros(steps, dtype=bool), StagingPlan(runs, runs, True, unique, blocks, 0)
    whole = (elems <= stage)[fold_of]
    key_tile = np.where(whole, tile[fold_of], -1 - fold_of)
    key_part = np.where(whole, 0, part)
    step_elems = np.where(whole, elems[fold_of], _share(elems[fold_of], part, n))
    starts = np.ones(steps, dtype=bool)
    starts[1:] = (key_tile[1:] != key_tile[:-1]) | (key_part[1:] != key_part[:-1])
    run = np.cumsum(starts) - 1
    last = np.ones(steps, dtype=bool)
    last[:-1] = starts[1:]
    runs = step_elems[starts].tolist()
    first_steps = np.flatnonzero(starts)
    run_tiles = [
        share(blocks[t], p if not w else 0, k if not w else 1, e, word_bytes)
        for t, p, k, w, e in zip(
            tile[fold_of[first_steps]].tolist(),
            part[first_steps].tolist(),
            n[first_steps].tolist(),
            whole[first_steps].tolist(),
            elems[fold_of[first_steps]].tolist(),
            strict=True,
        )
    ]
    return run, last, StagingPlan(runs, runs, False, unique, run_tiles, 0)


def _ofmap_plan(
    unique: int,
    reduces: bool,
    block: np.ndarray,
    spill: np.ndarray,
    row_fold: np.ndarray,
    row_folds: int,
    fold_of: np.ndarray,
    part: np.ndarray,
    n: np.ndarray,
    block_of: np.ndarray,
    blocks: list[Tile],
    word_bytes: int,
) -> tuple[np.ndarray, np.ndarray, StagingPlan]:
    """Per step, the OFMAP run it needs and the elements it writes after; and the plan.

    Fold ``f``'s results belong to ``blocks[block_of[f]]``; a step writes its share of them, and
    a read-back fetches exactly what the write it follows carried.
    """
    steps = len(fold_of)
    spilling = spill[fold_of]
    share_elems = _share(block[fold_of], part, n)
    first_row = row_fold[fold_of] == 0
    if reduces:
        keeps = ~spilling
        new_run = spilling | (keeps & first_row & (part == 0))
        hold = np.where(spilling, share_elems, block[fold_of])
        fetch = np.where(spilling & ~first_row, share_elems, 0)
        write = np.where(spilling | (row_fold[fold_of] == row_folds - 1), share_elems, 0)
    else:
        new_run = np.ones(steps, dtype=bool)
        hold, fetch, write = share_elems, np.zeros(steps, dtype=np.int64), share_elems
    run = np.cumsum(new_run) - 1
    written = np.cumsum(write > 0) - 1
    after = np.full(steps, -1, dtype=np.int64)
    readback = np.flatnonzero(fetch > 0)
    # In a spilling column fold every fold has n steps: step s reads back what step s - n wrote.
    after[readback] = written[readback - n[readback]]
    writing = np.flatnonzero(write > 0)
    writes = [
        share(blocks[b], p, k, e, word_bytes)
        for b, p, k, e in zip(
            block_of[fold_of[writing]].tolist(),
            part[writing].tolist(),
            n[writing].tolist(),
            block[fold_of[writing]].tolist(),
            strict=True,
        )
    ]
    after_runs = after[new_run].tolist()
    plan = StagingPlan(
        fetch[new_run].tolist(),
        hold[new_run].tolist(),
        False,
        unique,
        [writes[index] if index >= 0 else None for index in after_runs],
        0,
        after_runs,
        writes,
    )
    return run, write, plan
