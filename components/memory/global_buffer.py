"""A global buffer: a shared on-chip storage level that holds tiles and forwards what it lacks."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

from desim import REQUEST, RESPONSE, DesimError, Memory, Param, Port, Stat
from desim.channel import Channel, Transfer
from desim.data import Tile, line_extents, lines_of, operand_of, tensor_base, tensor_bytes
from desim.limits import MAX_LATENCY, MIN_BANDWIDTH
from desim.route import Request, resume_after
from desim.workload import OPERANDS, Layer, Share

if TYPE_CHECKING:
    import simpy

    from desim.system import System

POLICIES = ("planned", "lru")
MAX_LINES = 1 << 26
"""Most lines a global buffer tracks of one tensor (five bytes of state each)."""


class _Held:
    """What the level holds of one tensor, line by line: which lines are in, which are on their way."""

    def __init__(self, tensor: str, nbytes: int, line_bytes: int) -> None:
        self.tensor = tensor
        self.nbytes = nbytes
        self.base = tensor_base(tensor)
        lines = -(-nbytes // line_bytes)
        self.present = np.zeros(lines, dtype=bool)
        self.fetching = np.full(lines, -1, dtype=np.int32)
        """The fetch bringing each line in, by number (-1: none)."""


class GlobalBuffer(Memory):
    """A storage level shared by its clients (scratchpads, or levels above it): an L2.

    It holds tensors line by line (``line_bytes``) and serves reads of what it holds through its
    port (``bandwidth_bytes_per_cycle``, ``latency_cycles``) without touching the levels below.
    What it lacks it fetches from the next level on its ``memory`` route, at once, one request for
    the missing lines of each transaction; a transaction that needs lines already on their way
    waits for those fetches instead of asking again. Its wait is nested in the stall ledger, so a
    stall behind a miss is charged to where the fetch spent its time (a DRAM queue, say). Writes
    go through the port, are kept, and are written through to the next level; a write completes
    when the level below has taken it.

    What it holds (``operands``, default all; OFMAP's partial sums go with OFMAP): with the
    ``planned`` policy, at each layer's start it pins the smallest of those tensors, as many as
    fit whole (ties in the order IFMAP, FILTER, OFMAP, partial sums),
    and passes the others through without keeping them: a pinned tensor is read from below at
    most once per layer, so its traffic there is its distinct lines. With ``lru`` every line of
    those tensors is kept until the least recently used must make room.

    Layers start empty, unless the system runs with ``inter_layer: forward``: then the lines of a
    layer's OFMAP it still holds when the next layer (whose IFMAP that OFMAP is) starts are that
    layer's IFMAP lines, read without going below; and under ``planned``, when both layers pin the
    tensor, the outputs are not written through at all (``held_back_bytes``).
    """

    kind = "global_buffer"
    keeps_across_layers = True

    capacity_bytes = Param(int, 1 << 20, "bytes", "storage capacity", minimum=1)
    operands = Param(tuple, (), description="operands it holds (empty: all); others pass through", choices=OPERANDS)
    policy = Param(str, "planned", choices=POLICIES, description="pin what fits whole, or keep lines by LRU")
    line_bytes = Param(int, 64, "bytes", "granularity of holding and fetching data", minimum=1, maximum=1 << 20)
    bandwidth_bytes_per_cycle = Param(
        float, math.inf, "bytes/cycle", "rate of its port (inf: ideal)", minimum=MIN_BANDWIDTH, allow_inf=True
    )
    latency_cycles = Param(int, 0, "cycles", "access latency of its port", minimum=0, maximum=MAX_LATENCY)
    transaction_bytes = Param(int, 4096, "bytes", "size of the transactions it serves", minimum=1)

    clients = Port(RESPONSE, "requests from the levels above", multiple=True)
    memory = Port(REQUEST, "fetches misses from and writes through to the next level", peer=Memory)

    fill_bytes = Stat("bytes", "bytes fetched from the next level")
    write_through_bytes = Stat("bytes", "bytes written to the next level")
    hit_lines = Stat("lines", "lines clients read that it held")
    miss_lines = Stat("lines", "lines clients read that it had to wait for")
    peak_occupancy_bytes = Stat("bytes", "most bytes held at once")
    pinned = Stat("operands", "operands the planned policy kept this layer", initial="")
    forwarded_bytes = Stat("bytes", "bytes of the previous layer's OFMAP it still held, taken as this layer's IFMAP")
    held_back_bytes = Stat("bytes", "OFMAP bytes kept for the next layer instead of written through")

    def elaborate(self, env: simpy.Environment, system: System) -> None:
        super().elaborate(env, system)
        self._port = Channel(env, self.name, self.bandwidth_bytes_per_cycle, self.latency_cycles)
        self._through = _WriteThrough(self)
        self._word_bytes = system.word_bytes
        self._accumulator_bytes = system.accumulator_bytes
        self._tile_lines: dict[Tile, np.ndarray] = {}
        self._held: dict[str, _Held] = {}

    def read_hops(self) -> tuple:
        return (self, self._port)

    def write_hops(self) -> tuple:
        return (self._port, self._through)

    def channels(self) -> list[Channel]:
        return [self._port]

    def stall_causes(self) -> list[str]:
        return [*self._port.stall_causes(), *super().stall_causes()]

    def check_layer(self, layer: Layer, share: Share) -> None:
        sizes = tensor_bytes(layer, self.system.word_bytes, self.system.accumulator_bytes)
        for operand in self._kept(sizes):
            lines = -(-sizes[operand] // self.line_bytes)
            if lines > MAX_LINES:
                raise DesimError(
                    f"{self.name} would track the {operand}'s {sizes[operand]:,} bytes in {lines:,} lines of "
                    f"{self.line_bytes} bytes; it tracks at most {MAX_LINES:,} per tensor (raise line_bytes)"
                )

    def _kept(self, sizes: dict[str, int]) -> list[str]:
        """The tensors of these sizes it keeps: by ``planned``, the smallest that fit whole; by ``lru``, all."""
        wanted = [tensor for tensor in sizes if not self.operands or operand_of(tensor) in self.operands]
        if self.policy == "lru":
            return wanted
        kept, room = [], self.capacity_bytes
        for tensor in sorted(wanted, key=lambda name: sizes[name]):
            need = -(-sizes[tensor] // self.line_bytes) * self.line_bytes
            if need > room:
                break
            kept.append(tensor)
            room -= need
        return kept

    def begin_layer(self, layer: Layer) -> None:
        produced = self._held.get("ofmap") if self.chain.previous is not None else None
        super().begin_layer(layer)
        sizes = tensor_bytes(layer, self._word_bytes, self._accumulator_bytes)
        kept = self._kept(sizes)
        line = self.line_bytes
        self._held = {operand: _Held(operand, sizes[operand], line) for operand in kept}
        self._whole: set[Tile] = set()  # tiles found whole under the planned policy, which never evicts
        self.pinned = ",".join(tensor for tensor in sizes if tensor in kept) if self.policy == "planned" else ""
        self._fetches: dict[int, tuple[Request, _Held, np.ndarray]] = {}
        self._next_fetch = 0
        self._lines_held = 0
        self._lru: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._capacity_lines = self.capacity_bytes // line
        if produced is not None and "ifmap" in self._held:
            self._take_forwarded(produced, self._held["ifmap"])
        # With the planned policy a pinned OFMAP stays; if the next layer will pin its IFMAP too,
        # the outputs need not go down at all.
        following = self.chain.next
        self._hold_back = (
            self.policy == "planned"
            and following is not None
            and "ofmap" in kept
            and "ifmap" in self._kept(tensor_bytes(following, self._word_bytes, self._accumulator_bytes))
        )

    def _take_forwarded(self, produced: _Held, ifmap: _Held) -> None:
        """The previous layer's OFMAP lines it holds are this layer's IFMAP lines (same bytes, same layout)."""
        lines = np.flatnonzero(produced.present)
        ifmap.present[lines] = True
        self._lines_held = len(lines)
        if self.policy == "lru":
            self._lru.update(dict.fromkeys(("ifmap", line) for line in lines.tolist()))
        self.forwarded_bytes = min(len(lines) * self.line_bytes, ifmap.nbytes)
        self._note_occupancy()

    def peak_bytes_per_cycle(self) -> float:
        return self.bandwidth_bytes_per_cycle

    # -- reads ---------------------------------------------------------------------------------

    def submit(self, transfer: Transfer) -> None:
        """Look a read transaction up: pass it to the port once every line it needs is in."""
        self.read_bytes += transfer.nbytes
        tile = transfer.tile
        held = self._held.get(tile.tensor)
        if held is None:  # not kept here: straight through
            resume_after(transfer, [self._fetch(tile, transfer.client)])
            return
        lines = self._lines(tile, held)
        if tile in self._whole:
            self.hit_lines += len(lines)
            transfer.advance()
            return
        present = held.present[lines]
        hits = int(np.count_nonzero(present))
        self.hit_lines += hits
        self.miss_lines += len(lines) - hits
        if self.policy == "lru":
            self._touch(held, lines[present])
        if hits == len(lines):
            if self.policy == "planned":
                self._whole.add(tile)
            transfer.advance()
            return
        missing = lines[~present]
        fetches = held.fetching[missing]
        waits = [self._fetches[number][0] for number in np.unique(fetches[fetches >= 0]).tolist()]
        new = missing[fetches < 0]
        if len(new):
            waits.append(self._fill(held, new, transfer.client))
        resume_after(transfer, waits)

    def _lines(self, tile: Tile, held: _Held) -> np.ndarray:
        """The lines ``tile`` touches (worked out once per tile: the same data is the same tile)."""
        lines = self._tile_lines.get(tile)
        if lines is None:
            lines = self._tile_lines[tile] = lines_of(tile.extents(), self.line_bytes, held.base)
        return lines

    def _fill(self, held: _Held, lines: np.ndarray, client: object) -> Request:
        """Fetch ``lines`` of ``held``'s tensor, keeping them if there is room."""
        extents = line_extents(lines, self.line_bytes, held.base, held.nbytes)
        tile = Tile(held.tensor, int((extents[:, 1] - extents[:, 0]).sum()), extents)
        request = self._fetch(tile, client)
        if self._reserve(len(lines)):
            number = self._next_fetch
            self._next_fetch += 1
            held.fetching[lines] = number
            self._fetches[number] = (request, held, lines)
            request.event.callbacks.append(lambda _: self._filled(number))
        return request

    def _fetch(self, tile: Tile, client: object) -> Request:
        self.fill_bytes += tile.nbytes
        return self.memory.route.read(tile, client)

    def _filled(self, number: int) -> None:
        _, held, lines = self._fetches.pop(number)
        held.fetching[lines] = -1
        self._hold(held, lines)

    # -- room ----------------------------------------------------------------------------------

    def _reserve(self, lines: int) -> bool:
        """Take room for ``lines`` more lines, evicting the least recently used if need be; False
        if there is none (every line held is on its way in)."""
        if self.policy == "lru":  # the planned policy kept only tensors that fit whole
            while self._lines_held + lines > self._capacity_lines and self._lru:
                (tensor, line), _ = self._lru.popitem(last=False)
                self._held[tensor].present[line] = False
                self._lines_held -= 1
            if self._lines_held + lines > self._capacity_lines:
                return False
        self._lines_held += lines
        self._note_occupancy()
        return True

    def _hold(self, held: _Held, lines: np.ndarray) -> None:
        """``lines`` of ``held``'s tensor are in, in room already reserved."""
        held.present[lines] = True
        if self.policy == "lru":
            self._lru.update(dict.fromkeys((held.tensor, line) for line in lines.tolist()))

    def _touch(self, held: _Held, lines: np.ndarray) -> None:
        lru = self._lru
        for line in lines.tolist():
            lru.move_to_end((held.tensor, line))

    def _note_occupancy(self) -> None:
        occupied = self._lines_held * self.line_bytes
        if occupied > self.peak_occupancy_bytes:
            self.peak_occupancy_bytes = occupied
        if self.trace is not None:
            self.trace.counter(self.name, "occupancy", self.env.now, occupied, "bytes")

    # -- writes --------------------------------------------------------------------------------

    def write(self, transfer: Transfer) -> None:
        """Keep a written transaction's lines (where it holds the tensor) and write it through,
        unless they are outputs it holds for the next layer."""
        tile = transfer.tile
        self.write_bytes += tile.nbytes
        held = self._held.get(tile.tensor)
        if held is not None:
            lines = self._lines(tile, held)
            lines = lines[~held.present[lines] & (held.fetching[lines] < 0)]
            if len(lines) and self._reserve(len(lines)):
                self._hold(held, lines)
        if tile.tensor == "ofmap" and self._hold_back:
            self.held_back_bytes += tile.nbytes
            transfer.advance()
            return
        self.write_through_bytes += tile.nbytes
        resume_after(transfer, [self.memory.route.write(tile, transfer.client)])


class _WriteThrough:
    """The last hop of a write into a global buffer: keep it, and pass it down."""

    def __init__(self, level: GlobalBuffer) -> None:
        self.level = level

    def submit(self, transfer: Transfer) -> None:
        self.level.write(transfer)

    def stall_causes(self) -> list[str]:
        return self.level.stall_causes()
