"""Every mapping, checked against counts made here by brute force, element by element.

For random small layers, arrays, buffer sizes, loop orders and temporal tiles, a simulation runs
the explicit mapping and its cycles and the bytes each buffer moves are compared with:

- compute cycles: a loop over the folds, each costing SCALE-Sim's fill and drain plus its
  temporal extent (``t + R + C - 2`` for os, ``2R + C + t - 2`` for ws and is);
- bytes: the buffers' policy (see ``fold_schedule``) replayed over sets of element addresses:
  an input whose distinct elements fit its buffer is read once; otherwise, if every block of
  the operand's first dimension in the loop order, with all of its other, fits half the buffer,
  each such tile is read whenever that block changes; otherwise each fold reads its block's
  distinct elements unless the fold before read the same block and it fits half the buffer.
  An output block reduced over several folds keeps its partial sums if the blocks alive at
  once fit half the OFMAP buffer (at the accumulator's width; one block at a time when blocks
  run back to back); otherwise every fold writes its partial sums and the next fold of the
  block reads them back. Outputs are written once, at the word's width.
"""

import itertools
import math

from helpers import input_elements, run, system
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desim.workload import Layer

DIMS = {"os": ("M", "N", "K"), "ws": ("K", "N", "M"), "is": ("K", "M", "N")}


def folds(layer: Layer, rows: int, cols: int, dataflow: str, order: str, tile: int) -> list[dict[str, range]]:
    """Each fold's ranges of M, N and K, in the order the loops run them."""
    size = {"M": layer.m, "N": layer.n, "K": layer.k}
    step = dict(zip(DIMS[dataflow], (rows, cols, tile), strict=True))
    starts = {dim: range(0, size[dim], step[dim]) for dim in "MNK"}
    found = []
    for values in itertools.product(*(starts[dim] for dim in order)):
        start = dict(zip(order, values, strict=True))
        found.append({dim: range(start[dim], min(size[dim], start[dim] + step[dim])) for dim in "MNK"})
    return found


def input_bytes(
    folds_: list, dims: str, order: str, elements, whole: dict, capacity: int, word: int, storage_tiles: bool
) -> int:
    """Bytes an input's buffer reads, for an operand over GEMM ``dims`` whose blocks hold ``elements(ranges)``."""
    blocks = [frozenset(elements({dim: fold[dim] for dim in dims})) for fold in folds_]
    distinct = set().union(*blocks)
    if len(distinct) <= capacity // word:
        return len(distinct) * word
    stage = max(1, capacity // word // 2)
    # A storage-level tile: a block of the operand's dimension the loop order runs first, all of the other.
    outer = next(dim for dim in order if dim in dims)
    spans = [frozenset(elements({dim: fold[dim] if dim == outer else whole[dim] for dim in dims})) for fold in folds_]
    if storage_tiles and max(len(span) for span in spans) <= stage:
        keys = [fold[outer] for fold in folds_]
        return sum(len(span) for i, span in enumerate(spans) if i == 0 or keys[i] != keys[i - 1]) * word
    read, previous = 0, None
    for block in blocks:
        if block != previous or len(block) > stage:
            read += len(block)
        previous = block
    return read * word


def output_bytes(folds_: list, capacity: int, word: int, acc: int) -> tuple[int, int]:
    """Bytes the OFMAP buffer writes and reads back."""
    keys = [(tuple(f["M"]), tuple(f["N"])) for f in folds_]
    elements = {key: len(key[0]) * len(key[1]) for key in keys}
    if len({f["K"].start for f in folds_}) == 1:
        return sum(elements.values()) * word, 0  # no reduction across folds: every result is final
    stage = max(1, capacity // acc // 2)
    spans = {key: (keys.index(key), len(keys) - 1 - keys[::-1].index(key)) for key in elements}
    back_to_back = all(last - first + 1 == keys.count(key) for key, (first, last) in spans.items())
    if back_to_back:
        kept = {key: elements[key] <= stage for key in elements}
    else:
        alive = max(sum(elements[k] for k, (a, b) in spans.items() if a <= i <= b) for i in range(len(keys)))
        kept = dict.fromkeys(elements, alive <= stage)
    written = read = 0
    last_k = max(f["K"].start for f in folds_)
    for key, fold in zip(keys, folds_, strict=True):
        final = fold["K"].start == last_k
        if kept[key]:
            written += elements[key] * word if final else 0
        else:
            written += elements[key] * (word if final else acc)
            read += elements[key] * acc if fold["K"].start else 0
    return written, read


@st.composite
def cases(draw):
    if draw(st.booleans()):
        h, w = draw(st.integers(2, 9)), draw(st.integers(2, 9))
        layer = Layer(
            "conv",
            h,
            w,
            draw(st.integers(1, min(h, 3))),
            draw(st.integers(1, min(w, 3))),
            draw(st.integers(1, 4)),
            draw(st.integers(1, 12)),
            draw(st.integers(1, 2)),
            draw(st.integers(1, 2)),
        )
    else:
        layer = Layer.gemm("gemm", draw(st.integers(1, 30)), draw(st.integers(1, 30)), draw(st.integers(1, 30)))
    dataflow = draw(st.sampled_from(["os", "ws", "is"]))
    rows, cols = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    temporal = {"M": layer.m, "N": layer.n, "K": layer.k}[DIMS[dataflow][2]]
    tile = draw(st.integers(1, temporal))
    order = "".join(draw(st.permutations("MNK")))
    word = draw(st.sampled_from([1, 1, 2]))
    need = 2 * max(rows, cols) * word  # the least a buffer may have: an array edge, double-buffered
    capacity = {op: draw(st.integers(need * 4, 600)) for op in ("ifmap", "filter", "ofmap")}
    acc = draw(st.sampled_from([1, 2, 4]))  # narrower than a word, too: partial sums need not be wider
    return layer, dataflow, rows, cols, order, tile, capacity, word, acc, draw(st.booleans())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_a_mapping_computes_and_moves_what_its_folds_say(case):
    layer, dataflow, rows, cols, order, tile, capacity, word, acc, storage_tiles = case
    spec = {"order": order, DIMS[dataflow][2]: tile, "psums": "spill", "storage_tiles": storage_tiles}
    built = system(rows, cols, dataflow, capacity, math.inf, word, acc, mapper="explicit", mapping=spec)
    (result,) = run(built, [layer])
    s = result.stats

    folds_ = folds(layer, rows, cols, dataflow, order, tile)
    fill_drain = rows + cols - 2 if dataflow == "os" else 2 * rows + cols - 2
    time_dim = DIMS[dataflow][2]
    assert s["array.compute_cycles"] == sum(fill_drain + len(f[time_dim]) for f in folds_) - 1
    assert s["array.total_cycles"] == s["array.compute_cycles"]  # ideal memory: no stalls

    whole = {"M": range(layer.m), "N": range(layer.n), "K": range(layer.k)}
    ifmap = input_bytes(
        folds_,
        "MK",
        order,
        lambda r: input_elements(layer, r["M"], r["K"]),
        whole,
        capacity["ifmap"],
        word,
        storage_tiles,
    )
    filters = input_bytes(
        folds_,
        "KN",
        order,
        lambda r: {k * layer.n + n for k in r["K"] for n in r["N"]},
        whole,
        capacity["filter"],
        word,
        storage_tiles,
    )
    assert s["sram_ifmap.dram_read_bytes"] == ifmap
    assert s["sram_filter.dram_read_bytes"] == filters
    written, read = output_bytes(folds_, capacity["ofmap"], word, acc)
    assert s["sram_ofmap.dram_write_bytes"] == written
    assert s["sram_ofmap.dram_read_bytes"] == read
    assert (s["dram.read_bytes"], s["dram.write_bytes"]) == (ifmap + filters + read, written)
    # The count mappers choose by (made without building the plans) is what the buffers moved.
    traffic = s["array.planned_traffic"]
    assert traffic["ifmap"]["read_bytes"] == s["sram_ifmap.dram_read_bytes"]
    assert traffic["filter"]["read_bytes"] == s["sram_filter.dram_read_bytes"]
    assert traffic["ofmap"]["write_bytes"] == layer.m * layer.n * word
    assert traffic["ofmap"]["psum_write_bytes"] == written - layer.m * layer.n * word
    assert traffic["ofmap"]["psum_read_bytes"] == read
