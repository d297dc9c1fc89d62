"""A layer's fold schedule as the array executes it: steps, the tiles they need, and the traffic.

Precomputed with numpy before time starts, so the event loop only reads numbers.

The mapping (see ``dataflow``) gives the folds in order; each covers a block of M, of N and of
K and needs, of each operand, the block over its two GEMM dimensions: IFMAP ``M x K``, FILTER
``K x N``; its results update the OFMAP block ``M x N``, summed over the folds of every K block.
Tiles of each operand are numbered in the order folds first use them.

**Input tiles know their bytes.** An IFMAP tile moves the distinct input elements it touches
(see ``ifmap_footprint``), not its im2col entries. An operand whose distinct bytes fit its
buffer is *resident*: each tile fetches only what no earlier tile brought, and nothing leaves
until the layer ends, so the operand is read from DRAM exactly once. Otherwise, if the mapping
allows *storage-level tiles*, the buffer holds a block of whichever of the operand's dimensions
the loop order runs first, with all of its other dimension, for as long as that loop stays put
(``MNK`` order: IFMAP rows of M with all of K, reused across every N), provided every such tile
fits half the buffer. Otherwise tiles *stream*: a tile is fetched for each run of consecutive
folds that use it and leaves after the run.

**Partial sums stay while they fit.** An OFMAP block reduced over several folds keeps its room
from its first fold to its last and is written once, if it fits the half of the OFMAP buffer
the array may stage (at the accumulator's width); when the loop order interleaves blocks, they
stay only if all those alive at once fit. If not, a block *spills*: every fold writes its share
of partial sums below and the block's next fold reads it back.

**Steps.** A fold whose streamed tile or spilled block exceeds what its buffer stages at once
(half of it) is split into equal steps; the fold's cycles are shared out between them. All
folds of a spilling block get the same number of steps, so each step reads back what the
same step of the block's previous fold wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from desim.components.compute.dataflow import Folds, Mapping
from desim.components.compute.ifmap_footprint import distinct_inputs, first_use_inputs
from desim.components.compute.tiles import LayerTiles, share
from desim.data import Tile
from desim.errors import DesimError
from desim.staging import StagingPlan
from desim.workload import Layer, Share

MAX_STEPS = 1 << 23
"""Most steps a layer's schedule may have (each is a tuple held in memory while the layer runs)."""


@dataclass(frozen=True)
class Traffic:
    """What a schedule moves between its buffers and the level below, in bytes, counted exactly.

    Inputs: each operand's distinct bytes and the bytes its plan reads (re-reads are the
    difference). OFMAP: the final outputs written (each once), and the partial sums written and
    read back (at the accumulator's width).
    """

    ifmap_unique: int
    ifmap_read: int
    filter_unique: int
    filter_read: int
    ofmap_write: int
    psum_write: int
    psum_read: int

    @property
    def total(self) -> int:
        return self.ifmap_read + self.filter_read + self.ofmap_write + self.psum_write + self.psum_read

    def describe(self) -> dict[str, dict[str, int]]:
        """Per operand's buffer: distinct bytes, bytes read, re-reads, and for OFMAP the partial sums."""
        inputs = {
            operand: {"distinct_bytes": unique, "read_bytes": read, "reread_bytes": read - unique}
            for operand, unique, read in (
                ("ifmap", self.ifmap_unique, self.ifmap_read),
                ("filter", self.filter_unique, self.filter_read),
            )
        }
        psums = {"psum_write_bytes": self.psum_write, "psum_read_bytes": self.psum_read}
        return {**inputs, "ofmap": {"write_bytes": self.ofmap_write, **psums}}


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
    traffic: Traffic
    staged: dict[str, str | None]
    """Per input, the dimension whose blocks its storage-level tiles take (None: a fold's own)."""

    def describe(self, buffers: dict[str, str]) -> dict[str, Any]:
        """The mapping as the reports record it, with the tile each operand's buffer (named in
        ``buffers``) stages: whole if resident, else a fold's block; and what becomes of OFMAP's
        partial sums (none: every fold's results are final; kept on chip; or spilled below)."""
        mapping = self.mapping
        fold = {dim: min(mapping.block(dim), mapping.extent(dim)) for dim in "MNK"}
        levels = {}
        for operand, dims in (("ifmap", "MK"), ("filter", "KN"), ("ofmap", "MN")):
            resident, outer = self.plans[operand].resident, self.staged.get(operand)
            tile = {dim: mapping.extent(dim) if resident or outer not in (None, dim) else fold[dim] for dim in dims}
            levels[operand] = {"buffer": buffers[operand], "tile": tile, "resident": resident}
        levels["ofmap"]["psums"] = "spilled" if self.traffic.psum_write else "kept" if mapping.reduces else "none"
        return {"mapper": mapping.mapper, "order": mapping.order, "fold": fold, "folds": mapping.folds, **levels}


@dataclass(frozen=True)
class _Tiling:
    """What decides a layer's steps: per fold, its tiles and their elements, and its number of steps.

    Tiles of each operand are numbered in the order folds first use them.
    """

    word: int
    accumulator: int
    stage: dict[str, int]
    cycles: np.ndarray
    reads: tuple[np.ndarray, np.ndarray, np.ndarray]
    i_blocks: list[tuple[int, int, int, int]]
    i_counts: np.ndarray | None
    """Per IFMAP tile, what its runs fetch: first-use elements if resident, else distinct ones
    (None when only the traffic was asked for and the operand is resident)."""
    i_tile: np.ndarray
    i_resident: bool
    i_unique: int
    i_staged: str | None
    """The dimension whose blocks the IFMAP's storage-level tiles take (None: a fold's own blocks)."""
    f_blocks: list[tuple[tuple[int, int], tuple[int, int]]]
    f_tile: np.ndarray
    f_elems: np.ndarray
    f_resident: bool
    f_unique: int
    f_staged: str | None
    o_blocks: list[tuple[tuple[int, int], tuple[int, int]]]
    o_tile: np.ndarray
    block: np.ndarray
    """Per fold, the elements of its output block."""
    first: np.ndarray
    """Per fold, whether it starts its block's reduction."""
    last: np.ndarray
    """Per fold, whether it ends it (the block is then final)."""
    reduced: bool
    """Whether any block is reduced over several folds (else every fold's results are final)."""
    spill: np.ndarray
    parts: np.ndarray
    used_pes: int

    @property
    def i_elems(self) -> np.ndarray:
        return self.i_counts[self.i_tile]


def _sram_reads(mapping: Mapping, folds: Folds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per fold, the SRAM words read for IFMAP and FILTER and written for OFMAP (SCALE-Sim's counts)."""
    rows, cols, t = folds.used_rows, folds.used_cols, folds.used_t
    return {
        "ws": (rows * t, rows * cols, cols * t),
        "os": (rows * t, cols * t, rows * cols),
        "is": (rows * cols, rows * t, cols * t),
    }[mapping.dataflow]


def _stages(mapping: Mapping, word_bytes: int, accumulator_bytes: int, capacity: dict[str, int]) -> dict[str, int]:
    """Elements of each operand a buffer stages at once: half of it, in whole words; OFMAP's at
    the accumulator's width if the mapping sums results over several folds (they are partial
    sums until the last)."""
    width = {"ifmap": word_bytes, "filter": word_bytes, "ofmap": accumulator_bytes if mapping.reduces else word_bytes}
    return {operand: max(1, max(1, nbytes // width[operand]) // 2) for operand, nbytes in capacity.items()}


def _numbered(keys: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Per fold, its tile's number in order of first use; and each number's key."""
    unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    number = np.empty(len(unique), dtype=np.int64)
    number[order] = np.arange(len(unique), dtype=np.int64)
    return number[inverse], unique[order].tolist()


def _kept(tile: np.ndarray, block: np.ndarray, stage: int) -> np.ndarray:
    """Per output block, whether its partial sums stay in the buffer until it is final.

    Blocks whose folds run back to back each stay if they fit the stage on their own; when the
    loop order interleaves blocks, they all stay if every set of blocks alive at once fits.
    """
    blocks, folds = int(tile.max()) + 1, len(tile)
    sizes = np.zeros(blocks, dtype=np.int64)
    sizes[tile] = block
    at = np.arange(folds, dtype=np.int64)
    first = np.full(blocks, folds, dtype=np.int64)
    last = np.zeros(blocks, dtype=np.int64)
    np.minimum.at(first, tile, at)
    np.maximum.at(last, tile, at)
    if np.array_equal(last - first + 1, np.bincount(tile, minlength=blocks)):
        return sizes <= stage
    alive = np.zeros(folds + 1, dtype=np.int64)
    np.add.at(alive, first, sizes)
    np.add.at(alive, last + 1, -sizes)
    return np.full(blocks, int(np.cumsum(alive).max()) <= stage)


def _tiling(
    layer: Layer,
    mapping: Mapping,
    word_bytes: int,
    accumulator_bytes: int,
    capacity: dict[str, int],
    share: Share,
    *,
    counting: bool = False,
) -> _Tiling:
    words = {operand: max(1, nbytes // word_bytes) for operand, nbytes in capacity.items()}
    stage = _stages(mapping, word_bytes, accumulator_bytes, capacity)
    folds = mapping.folds_in_order()
    index = {dim: folds.index(dim, mapping.dataflow) for dim in "MNK"}
    used = dict(zip(mapping.dims, (folds.used_rows, folds.used_cols, folds.used_t), strict=True))
    count = {dim: -(-mapping.extent(dim) // mapping.block(dim)) for dim in "MNK"}
    offset = {"M": share.m_start, "N": share.n_start, "K": 0}

    bounds = {
        dim: [
            (offset[dim] + i * mapping.block(dim), offset[dim] + min(mapping.extent(dim), (i + 1) * mapping.block(dim)))
            for i in range(count[dim])
        ]
        for dim in "MNK"
    }
    span = {dim: bounds[dim].__getitem__ for dim in "MNK"}  # block i of a dimension, in layer coordinates

    def blocks_of(first: str, second: str, keys: list[int]) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        """The blocks over dimensions ``first`` and ``second`` that tile numbers ``keys`` stand for."""
        return [(span[first](key // count[second]), span[second](key % count[second])) for key in keys]

    # The fold blocks of each operand (made only for a schedule, not for a count of its traffic).
    i_tile, i_keys = _numbered(index["M"] * count["K"] + index["K"])
    f_tile, f_keys = _numbered(index["K"] * count["N"] + index["N"])
    o_tile, o_keys = _numbered(index["M"] * count["N"] + index["N"])
    f_blocks = blocks_of("K", "N", f_keys) if not counting else []
    o_blocks = blocks_of("M", "N", o_keys) if not counting else []

    # Input operands: resident if their distinct elements fit; else, if they fit half the buffer,
    # its storage-level tiles (if the mapping allows them); else streamed fold by fold.
    whole = {"M": (share.m_start, share.m_stop), "N": (share.n_start, share.n_stop), "K": (0, layer.k)}

    def staged(dims: str, elements: Callable[..., int], room: int) -> tuple[np.ndarray, list, list[int], str] | None:
        """Storage-level tiles of an input whose GEMM dimensions are ``dims``: a block of the one
        the loop order runs first, with all of the other, held while that loop stays put (tiles
        numbered by first use, their blocks, their elements, that dimension); None if one does
        not fit ``room``."""
        outer = next(dim for dim in mapping.order if dim in dims)
        tile, keys = _numbered(index[outer])
        blocks, counts = [], []
        for key in keys:
            block = tuple(span[dim](key) if dim == outer else whole[dim] for dim in dims)
            counts.append(elements(*block))
            if counts[-1] > room:
                return None
            blocks.append(block)
        return tile, blocks, counts, outer

    i_unique = distinct_inputs(layer, share.m_start, share.m_stop, 0, layer.k)
    i_resident = i_unique <= words["ifmap"]
    i_staged = f_staged = None
    if i_resident:
        i_blocks = [(*m, *k) for m, k in blocks_of("M", "K", i_keys)] if not counting else []
        i_counts = np.asarray(first_use_inputs(layer, i_blocks), dtype=np.int64) if not counting else None
    else:
        level = None
        if mapping.storage_tiles:
            level = staged("MK", lambda m, k: distinct_inputs(layer, *m, *k), stage["ifmap"])
        if level is not None:
            i_tile, rects, counts, i_staged = level
            i_blocks = [(*m, *k) for m, k in rects]
            i_counts = np.asarray(counts, dtype=np.int64)
        else:
            i_blocks = [(*m, *k) for m, k in blocks_of("M", "K", i_keys)]
            i_counts = np.asarray([distinct_inputs(layer, *b) for b in i_blocks], dtype=np.int64)
    f_elems = used["K"] * used["N"]
    f_unique = layer.k * share.n
    f_resident = f_unique <= words["filter"]
    if not f_resident and mapping.storage_tiles:
        level = staged("KN", lambda k, n: (k[1] - k[0]) * (n[1] - n[0]), stage["filter"])
        if level is not None:
            f_tile, f_blocks, counts, f_staged = level
            f_elems = np.asarray(counts, dtype=np.int64)[f_tile]

    # Results: a block reduced over several folds keeps its partial sums on chip or spills them.
    block = used["M"] * used["N"]
    reduced = mapping.reduces
    spill = ~_kept(o_tile, block, stage["ofmap"])[o_tile] if reduced else np.ones(len(o_tile), dtype=bool)

    parts = np.ones(len(o_tile), dtype=np.int64)
    if not i_resident:
        parts = np.maximum(parts, -(-i_counts[i_tile] // stage["ifmap"]))
    if not f_resident:
        parts = np.maximum(parts, -(-f_elems // stage["filter"]))
    parts = np.maximum(parts, np.where(spill, -(-block // stage["ofmap"]), 1))
    if reduced and spill.any():
        # Every fold of a spilling block takes as many steps as its widest, so each step reads
        # back what the same step of the block's previous fold wrote.
        widest = np.zeros(len(o_keys), dtype=np.int64)
        np.maximum.at(widest, o_tile, parts)
        parts = np.where(spill, widest[o_tile], parts)
    return _Tiling(
        word_bytes,
        accumulator_bytes,
        stage,
        mapping.fill_drain + folds.used_t,
        _sram_reads(mapping, folds),
        i_blocks,
        i_counts,
        i_tile,
        i_resident,
        i_unique,
        i_staged,
        f_blocks,
        f_tile,
        f_elems,
        f_resident,
        f_unique,
        f_staged,
        o_blocks,
        o_tile,
        block,
        index["K"] == 0,
        index["K"] == count["K"] - 1,
        reduced,
        spill,
        parts,
        int((folds.used_rows * folds.used_cols).sum()),
    )


def _streamed(tile: np.ndarray, elems: np.ndarray, stage: int) -> int:
    """Elements a streamed operand reads: a tile that fits the stage once per run of folds that
    use it, one that does not once per fold (see :func:`_input_plan`)."""
    whole = elems <= stage
    fetches = ~whole
    fetches[0] = True
    fetches[1:] |= (tile[1:] != tile[:-1]) | ~whole[:-1]
    return int(elems[fetches].sum())


def _traffic(tiling: _Tiling) -> Traffic:
    word, acc = tiling.word, tiling.accumulator
    ifmap_read = (
        tiling.i_unique if tiling.i_resident else _streamed(tiling.i_tile, tiling.i_elems, tiling.stage["ifmap"])
    )
    filter_read = (
        tiling.f_unique if tiling.f_resident else _streamed(tiling.f_tile, tiling.f_elems, tiling.stage["filter"])
    )
    spill, block = tiling.spill, tiling.block
    return Traffic(
        tiling.i_unique * word,
        ifmap_read * word,
        tiling.f_unique * word,
        filter_read * word,
        int(block[tiling.last].sum()) * word,
        int(block[spill & ~tiling.last].sum()) * acc,
        int(block[spill & ~tiling.first].sum()) * acc,
    )


def count_traffic(
    layer: Layer,
    mapping: Mapping,
    word_bytes: int,
    capacity: dict[str, int],
    share: Share,
    accumulator_bytes: int | None = None,
) -> Traffic:
    """The bytes :func:`build_schedule`'s plans would move, without building them."""
    acc = accumulator_bytes or word_bytes
    return _traffic(_tiling(layer, mapping, word_bytes, acc, capacity, share, counting=True))


def check_steps(
    layer: Layer,
    mapping: Mapping,
    word_bytes: int,
    capacity: dict[str, int],
    share: Share,
    accumulator_bytes: int | None = None,
) -> None:
    """Raise DesimError if the layer's schedule would have more than ``MAX_STEPS`` steps.

    Cheap for every layer that is far from the limit: an upper bound (every tile counted at its
    im2col size, every fold split as finely as the finest) settles most; only a layer whose bound
    passes the limit has its steps counted exactly.
    """
    acc = accumulator_bytes or word_bytes
    reads = _sram_reads(mapping, mapping.folds_in_order())  # per fold: IFMAP block (im2col), FILTER, results
    stage = _stages(mapping, word_bytes, acc, capacity)
    finest = max(
        int((-(-count // stage[op])).max()) for count, op in zip(reads, ("ifmap", "filter", "ofmap"), strict=True)
    )
    if mapping.folds * finest > MAX_STEPS:
        tiling = _tiling(layer, mapping, word_bytes, acc, capacity, share, counting=True)
        _refuse_steps(int(tiling.parts.sum()), capacity)


def _refuse_steps(steps: int, capacity: dict[str, int]) -> None:
    if steps > MAX_STEPS:
        smallest = min(capacity, key=capacity.get)
        raise DesimError(
            f"would stream in {steps:,} steps through buffers this small "
            f"(at most {MAX_STEPS:,}); give the {smallest} scratchpad more capacity"
        )


def build_schedule(
    layer: Layer,
    mapping: Mapping,
    word_bytes: int,
    capacity: dict[str, int],
    share: Share | None = None,
    accumulator_bytes: int | None = None,
) -> FoldSchedule:
    """Schedule ``share`` of ``layer`` (all of it by default) on ``mapping``, with ``capacity[operand]`` bytes of room.

    Runs and result shares are whole words; partial sums are ``accumulator_bytes`` each (by
    default a word).
    """
    share = share if share is not None else Share.whole(layer)
    acc = accumulator_bytes or word_bytes
    tiling = _tiling(layer, mapping, word_bytes, acc, capacity, share)
    parts, stage = tiling.parts, tiling.stage
    _refuse_steps(int(parts.sum()), capacity)
    folds = len(parts)
    fold_of = np.repeat(np.arange(folds, dtype=np.int64), parts)
    part = np.arange(len(fold_of), dtype=np.int64) - np.repeat(np.cumsum(parts) - parts, parts)
    n = parts[fold_of]
    last_part = part == n - 1

    tiles = LayerTiles(layer, word_bytes)
    counts = tiling.i_counts.tolist()
    if tiling.i_resident:
        i_blocks = tiles.ifmap_first_uses(tiling.i_blocks, counts)
    else:
        i_blocks = [tiles.ifmap(block, count) for block, count in zip(tiling.i_blocks, counts, strict=True)]
    f_blocks = [tiles.matrix("filter", layer.n, *block) for block in tiling.f_blocks]
    steps_of = (fold_of, part, n)
    i_run, i_release, i_plan = _input_plan(
        tiling.i_tile,
        tiling.i_elems,
        tiling.i_resident,
        tiling.i_unique,
        stage["ifmap"],
        *steps_of,
        i_blocks,
        word_bytes,
    )
    f_run, f_release, f_plan = _input_plan(
        tiling.f_tile,
        tiling.f_elems,
        tiling.f_resident,
        tiling.f_unique,
        stage["filter"],
        *steps_of,
        f_blocks,
        word_bytes,
    )
    o_run, o_write, o_plan = _ofmap_plan(tiling, tiles, layer.n, share.m * share.n, fold_of, part, n)
    cycles = _share(tiling.cycles[fold_of], part, n)
    booked = [np.where(last_part, counts[fold_of], 0) for counts in tiling.reads]

    steps = list(
        zip(
            cycles.tolist(),
            i_run.tolist(),
            i_release.tolist(),
            f_run.tolist(),
            f_release.tolist(),
            o_run.tolist(),
            o_write.tolist(),
            *(b.tolist() for b in booked),
            strict=True,
        )
    )
    plans = {}
    for operand, plan in (("ifmap", i_plan), ("filter", f_plan)):
        fetched = [e * word_bytes for e in plan.fetch]
        plans[operand] = StagingPlan(fetched, fetched, plan.resident, plan.unique_bytes * word_bytes, plan.tiles, 0)
    plans["ofmap"] = o_plan
    plans = {operand: replace(plan, budget=capacity[operand]) for operand, plan in plans.items()}
    staged = {"ifmap": tiling.i_staged, "filter": tiling.f_staged}
    return FoldSchedule(mapping, steps, plans, tiling.used_pes, fold_of, _traffic(tiling), staged)


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
    """Per step, the run it reads and whether to release it after; and the plan, in elements.

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
    tiling: _Tiling, tiles: LayerTiles, columns: int, unique: int, fold_of: np.ndarray, part: np.ndarray, n: np.ndarray
) -> tuple[np.ndarray, np.ndarray, StagingPlan]:
    """Per step, the OFMAP run it needs and the bytes it writes after; and the plan, in bytes.

    A block that keeps its partial sums takes room for all of them (at the accumulator's width)
    at its first step and writes its outputs (at the word's) in its last fold. A spilling block,
    and every block of a layer whose folds each finish their results, takes room step by step:
    each step writes its share, as partial sums until the block's last fold, and the block's next
    fold reads back exactly what it wrote.
    """
    word, acc = tiling.word, tiling.accumulator
    room = acc if tiling.reduced else word  # what a result takes in the buffer until it is written
    steps = len(fold_of)
    block_of = tiling.o_tile[fold_of]
    spilling = tiling.spill[fold_of]
    first, last = tiling.first[fold_of], tiling.last[fold_of]
    block = tiling.block[fold_of]
    share_elems = _share(block, part, n)
    new_run = spilling | (first & (part == 0))
    numbered = np.cumsum(new_run) - 1
    kept_run = np.full(len(tiling.o_blocks), -1, dtype=np.int64)
    opening = new_run & ~spilling
    kept_run[block_of[opening]] = numbered[opening]
    run = np.where(spilling, numbered, kept_run[block_of])  # a kept block's steps all use its one run
    hold = np.where(spilling, share_elems, block) * room
    fetch = np.where(spilling & ~first, share_elems, 0) * acc
    written_elems = np.where(spilling | last, share_elems, 0)
    write = written_elems * np.where(last, word, acc)

    # A read-back follows the write of the same part of the block's previous fold.
    writing = np.flatnonzero(write > 0)
    written = np.cumsum(write > 0) - 1
    order = np.lexsort((np.arange(steps), part, block_of))
    same = (block_of[order[1:]] == block_of[order[:-1]]) & (part[order[1:]] == part[order[:-1]])
    previous = np.full(steps, -1, dtype=np.int64)
    previous[order[1:][same]] = order[:-1][same]
    after = np.full(steps, -1, dtype=np.int64)
    readback = np.flatnonzero(fetch > 0)
    after[readback] = written[previous[readback]]

    def write_tile(step: int) -> Tile:
        rows, cols = tiling.o_blocks[block_of[step]]
        final = bool(last[step])
        whole = tiles.matrix("ofmap", columns, rows, cols, psums=0 if final else acc)
        return share(whole, int(part[step]), int(n[step]), int(block[step]), word if final else acc)

    writes = [write_tile(step) for step in writing.tolist()]
    after_runs = after[new_run].tolist()
    plan = StagingPlan(
        fetch[new_run].tolist(),
        hold[new_run].tolist(),
        False,
        unique * word,
        [writes[index] if index >= 0 else None for index in after_runs],
        0,
        after_runs,
        writes,
        (written_elems[writing] * room).tolist(),
    )
    return run, write, plan
