"""The scratchpad: an on-chip SRAM that stages one operand for the array, with a DMA prefetcher."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from desim import REQUEST, RESPONSE, Buffer, DesimError, Memory, Param, Port, ProcessGenerator, Stat
from desim.limits import MIN_BANDWIDTH
from desim.workload import Layer

if TYPE_CHECKING:
    import simpy

    from desim.components.compute.fold_schedule import OperandPlan
    from desim.data import Tile
    from desim.ledger import Phase
    from desim.route import Request
    from desim.system import System

BUFFERINGS = ("double", "lookahead")


class _Run:
    """When one run passed each stage, and the requests it waited on (for the stall ledger)."""

    __slots__ = (
        "arrived_at",
        "depends_on",
        "freed_by",
        "issued_at",
        "request",
        "reserved_at",
        "slot_at",
        "slot_freed_by",
    )

    def __init__(self) -> None:
        self.slot_at = self.reserved_at = self.issued_at = self.arrived_at = 0
        self.slot_freed_by: Request | None = None  # the read whose arrival freed a request slot
        self.freed_by: Request | None = None  # the write whose landing freed room
        self.depends_on: Request | None = None  # the psum write a read-back waited for
        self.request: Request | None = None  # the fetch itself


class Scratchpad(Buffer):
    """An SRAM scratchpad for one operand, filled and drained by its own DMA engine.

    Timing model. The array hands the buffer a *plan* for the layer: runs of bytes to hold and to
    fetch, in the order it will need them (see ``fold_schedule``). The prefetcher walks the plan
    ahead of the array and, for each run, waits for room, takes it, and issues the read at once,
    so many requests may be in flight. ``double`` buffering lets at most two streamed runs be
    held (one read by the array, one filling); ``lookahead`` fetches as far ahead as capacity
    allows. A resident plan (the operand fits) simply loads every run and keeps it. A streamed
    run is released after the last step that reads it. For OFMAP a run is room for results; the
    array hands results over after each step and each is written to memory at once, its room
    freed when the write lands; spilled partial sums are read back into a later run once their
    write has landed.

    Banks: with ``ports_per_bank = 1`` the SRAM cannot take DMA data into the bank the array is
    using. A run lives in bank ``run % banks``; data arriving for the bank of the array's current
    step is held back until the array starts a step on another bank or waits, and is then
    written at ``port_bytes_per_cycle``. Two or more ports (the default) never conflict, as
    SCALE-Sim assumes. Drains read between steps and do not conflict.

    Traced, the buffer draws each memory request from issue to completion on its ``requests``
    tracks and keeps an ``occupancy`` counter of the bytes of room taken.
    """

    kind = "scratchpad"

    capacity_bytes = Param(int, 65536, "bytes", "SRAM capacity", minimum=2)
    buffering = Param(str, "double", choices=BUFFERINGS, description="prefetch two runs, or as far as room allows")
    banks = Param(int, 1, "banks", "banks runs are spread over (run j in bank j % banks)", minimum=1)
    ports_per_bank = Param(int, 2, "ports", "ports per bank; 1 makes DMA and array conflict on a bank", minimum=1)
    port_bytes_per_cycle = Param(
        float, 64.0, "bytes/cycle", "rate at which a port writes DMA data", minimum=MIN_BANDWIDTH
    )
    outstanding_reads = Param(int, 4, "requests", "most reads the DMA engine keeps in flight", minimum=1)

    compute = Port(RESPONSE, "serves tiles to (or takes results from) the array")
    memory = Port(REQUEST, "fills from and drains to main memory", peer=Memory)

    dram_read_bytes = Stat("bytes", "bytes fetched from main memory")
    dram_write_bytes = Stat("bytes", "bytes written to main memory")
    unique_bytes = Stat("bytes", "distinct bytes of the operand: the least it can move")
    excess_bytes = Stat("bytes", "bytes moved beyond the operand's distinct bytes (refetches, spills)")
    resident = Stat("flag", "1 if the whole operand stayed in the buffer")
    dram_first_cycle = Stat("cycles", "first cycle of memory traffic, from layer start")
    dram_last_cycle = Stat("cycles", "last cycle of memory traffic, from layer start")
    requests = Stat("requests", "memory requests made (tile fetches, result writes, read-backs)")
    avg_request_latency_cycles = Stat("cycles", "mean time from issuing a request to its completion")
    peak_occupancy_bytes = Stat("bytes", "most bytes held at once")
    bank_conflict_cycles = Stat("cycles", "cycles DMA data waited for a bank the array was using")

    def check(self) -> None:
        if self.ports_per_bank == 1 and self.banks > self.capacity_bytes:
            raise DesimError(
                f"cannot split {self.capacity_bytes} bytes into {self.banks} banks", key=f"{self.name}.banks"
            )

    @property
    def single_ported(self) -> bool:
        return self.ports_per_bank == 1

    @property
    def capacity_label(self) -> str:
        return f"{self.name} capacity"

    @property
    def bank_label(self) -> str:
        return f"{self.name} bank conflict"

    def stall_causes(self) -> list[str]:
        """Ledger labels of the buffer itself, then those of everything its memory port leads to."""
        return [self.capacity_label, *([self.bank_label] if self.single_ported else []), *super().stall_causes()]

    def elaborate(self, env: simpy.Environment, system: System) -> None:
        super().elaborate(env, system)
        self.ready: list[bool] = []
        self._room: simpy.Event | None = None
        self._waiter: tuple[int, simpy.Event] | None = None
        self._busy_bank = -1
        self._deferred: list[int] = []

    def begin_layer(self, layer: Layer) -> None:
        super().begin_layer(layer)
        self._first_traffic: int | None = None
        self._last_traffic = 0
        self._latency_total = 0

    def end_layer(self) -> None:
        if self._first_traffic is not None:
            # Traffic served within its issue cycle (ideal memory) still occupies that cycle.
            self.dram_first_cycle = self._first_traffic - self.layer_start
            self.dram_last_cycle = max(self._last_traffic - 1, self._first_traffic) - self.layer_start
        if self.requests:
            self.avg_request_latency_cycles = self._latency_total / self.requests
        moved = self.dram_read_bytes + self.dram_write_bytes
        self.excess_bytes = moved - self.unique_bytes

    def serve(self, plan: OperandPlan) -> None:
        """Serve the array this layer by ``plan``: prefetch its runs in order, take its results."""
        runs = len(plan.hold)
        self._plan = plan
        self.ready = [False] * runs
        self._runs = [_Run() for _ in range(runs)]
        self._used = self._held = self._in_flight = 0
        self._slot_freed_by: Request | None = None
        self._writes: list[Request] = []
        self._writes_pending = 0
        self._write_issued: simpy.Event | None = None
        self._freed_by: Request | None = None
        self._last_write: Request | None = None
        self._drained: simpy.Event | None = None
        self.unique_bytes = plan.unique_bytes
        self.resident = int(plan.resident)
        self._occupancy_changed()
        self.env.process(self._prefetch(plan))

    # -- the array's side ---------------------------------------------------------------------

    def arrival(self, run: int) -> simpy.Event:
        """An event that fires once run ``run`` is ready (room taken, data arrived)."""
        event = self.env.event()
        self._waiter = (run, event)
        self._write_in(lambda held: True)  # the array is waiting: every bank is free
        return event

    def phases(self, run: int, ready_at: float) -> list[Phase]:
        """What a wait for ``run`` (ended at ``ready_at``) was waiting on, for the stall ledger."""
        record, label = self._runs[run], self.capacity_label
        phases: list[Phase] = [
            (record.slot_at, record.slot_freed_by, label),
            (record.reserved_at, record.freed_by, label),
            (record.issued_at, record.depends_on, label),
            (record.arrived_at, record.request, label),
        ]
        if self.single_ported:  # only then can arrived data wait for its bank
            phases.append((ready_at, None, self.bank_label))
        return phases

    def release(self, run: int) -> None:
        """The array is done with run ``run``: free its room for the next."""
        self._used -= self._plan.hold[run]
        self._held -= 1
        self._occupancy_changed()
        self._wake_room()

    def write(self, nbytes: int) -> None:
        """Results are ready: write them to memory now; their room frees when the write lands."""
        tile = self._plan.writes[len(self._writes)]
        assert tile.nbytes == nbytes, f"{self.name}: write of {nbytes} bytes, planned {tile.nbytes}"
        request = self._request(tile, write=True)
        self._writes.append(request)
        self._writes_pending += 1
        request.event.callbacks.append(self._written)
        if self._write_issued is not None:
            event, self._write_issued = self._write_issued, None
            event.succeed()

    def drained(self) -> simpy.Event:
        """No more results this layer; an event that fires once every write has landed."""
        self._drained = self.env.event()
        if not self._writes_pending:
            self._drained.succeed()
        return self._drained

    def drain_phases(self, until: float) -> list[Phase]:
        """What the final wait for the drain was waiting on: the write that landed last."""
        return [(until, self._last_write, self.capacity_label)]

    def begin_step(self, run: int) -> None:
        """The array starts a step that uses run ``run``'s bank (single-ported SRAMs only)."""
        self._busy_bank = run % self.banks
        self._write_in(lambda held: held % self.banks != self._busy_bank)

    def end_step(self) -> None:
        """The step is over; data held back waits until the array uses another bank or waits."""
        self._busy_bank = -1

    def _write_in(self, free) -> None:
        """Start writing in the held-back runs whose bank ``free(run)`` says the array leaves alone."""
        if not self._deferred:
            return
        keep = []
        for run in self._deferred:
            if free(run):
                cycles = math.ceil(self._plan.fetch[run] / self.port_bytes_per_cycle)
                self.bank_conflict_cycles += self.env.now - self._runs[run].arrived_at + cycles
                self.env.timeout(cycles, run).callbacks.append(self._written_in)
            else:
                keep.append(run)
        self._deferred = keep

    # -- the prefetcher ------------------------------------------------------------------------

    def _prefetch(self, plan: OperandPlan) -> ProcessGenerator:
        env = self.env
        capacity = self.capacity_bytes
        limit = 2 if self.buffering == "double" and not plan.resident and plan.after_write is None else math.inf
        after_write = plan.after_write
        outstanding = self.outstanding_reads
        for run, (fetch, hold) in enumerate(zip(plan.fetch, plan.hold, strict=True)):
            record = self._runs[run]
            self._slot_freed_by = None
            while self._in_flight >= outstanding:
                self._room = env.event()
                yield self._room
            record.slot_at, record.slot_freed_by = env.now, self._slot_freed_by
            self._freed_by = None
            while self._held >= limit or self._used + hold > capacity:
                self._room = env.event()
                yield self._room
            record.reserved_at, record.freed_by = env.now, self._freed_by
            self._used += hold
            self._held += 1
            if self._used > self.peak_occupancy_bytes:
                self.peak_occupancy_bytes = self._used
            self._occupancy_changed()
            if after_write is not None and after_write[run] >= 0:
                index = after_write[run]
                while index >= len(self._writes):
                    self._write_issued = env.event()
                    yield self._write_issued
                depends_on = self._writes[index]
                if not depends_on.event.processed:
                    yield depends_on.event
                record.depends_on = depends_on
            record.issued_at = env.now
            if fetch:
                request = self._request(plan.tiles[run], write=False)
                record.request = request
                self._in_flight += 1
                request.event.callbacks.append(lambda event, run=run: self._arrived(run, event.value))
            else:
                self._arrived(run)

    def _arrived(self, run: int, request: Request | None = None) -> None:
        self._runs[run].arrived_at = self.env.now
        if request is not None:
            self._in_flight -= 1
            self._slot_freed_by = request
            self._wake_room()
        if self.single_ported and run % self.banks == self._busy_bank and self._plan.fetch[run]:
            self._deferred.append(run)
        else:
            self._ready(run)

    def _written_in(self, event: simpy.Event) -> None:
        self._ready(event.value)

    def _ready(self, run: int) -> None:
        self.ready[run] = True
        if self._waiter is not None and self._waiter[0] == run:
            event = self._waiter[1]
            self._waiter = None
            event.succeed()

    # -- shared --------------------------------------------------------------------------------

    def _request(self, tile: Tile, *, write: bool) -> Request:
        now = int(self.env.now)
        if self._first_traffic is None:
            self._first_traffic = now
        route = self.memory.route
        if write:
            self.dram_write_bytes += tile.nbytes
            request = route.write(tile, self)
        else:
            self.dram_read_bytes += tile.nbytes
            request = route.read(tile, self)
        self.requests += 1
        request.event.callbacks.append(self._note_done)
        if self.trace is not None:
            request.event.callbacks.append(self._trace_request)
        return request

    def _note_done(self, event: simpy.Event) -> None:
        now = int(self.env.now)
        self._last_traffic = now
        self._latency_total += now - event.value.issued_at

    def _trace_request(self, event: simpy.Event) -> None:
        request = event.value
        if self.trace is not None:
            kind = "write" if request.is_write else "read back" if self._plan.after_write else "fetch"
            name = f"{kind} {self.operand}"
            self.trace.span(self.name, "requests", name, request.issued_at, self.env.now, bytes=request.nbytes)

    def _occupancy_changed(self) -> None:
        if self.trace is not None:
            self.trace.counter(self.name, "occupancy", self.env.now, self._used, "bytes")

    def _written(self, event: simpy.Event) -> None:
        request = event.value
        self._used -= request.nbytes
        self._occupancy_changed()
        self._writes_pending -= 1
        self._freed_by = self._last_write = request
        self._wake_room()
        if not self._writes_pending and self._drained is not None and not self._drained.triggered:
            self._drained.succeed()

    def _wake_room(self) -> None:
        if self._room is not None:
            event, self._room = self._room, None
            event.succeed()
