"""The scratchpad: an on-chip SRAM that stages operands for an array, with a DMA prefetcher per operand."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from desim import REQUEST, RESPONSE, Buffer, DesimError, Memory, Param, Port, ProcessGenerator, Stat
from desim.limits import MIN_BANDWIDTH
from desim.workload import OPERANDS, Layer

if TYPE_CHECKING:
    import simpy

    from desim.data import Tile
    from desim.ledger import Phase
    from desim.route import Request
    from desim.staging import StagingPlan
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
    """An SRAM scratchpad for one operand or several, filled and drained by its own DMA engine.

    Timing model. For each operand it stages, the array hands the buffer a *plan* for the layer:
    runs of bytes to hold and to fetch, in the order it will need them (see ``fold_schedule``),
    made for a *budget* of room: the whole capacity when the buffer holds one operand, that
    operand's share when it holds several (the array splits the capacity per layer, see
    ``systolic_array``). A prefetcher per operand walks its plan ahead of the array and, for each
    run, waits for room within its budget, takes it, and issues the read at once, so many
    requests may be in flight (at most ``outstanding_reads`` for the whole buffer). ``double``
    buffering lets at most two streamed runs of an operand be held (one read by the array, one
    filling); ``lookahead`` fetches as far ahead as the budget allows. A resident plan (the
    operand fits) simply loads every run and keeps it. A streamed run is released after the last
    step that reads it. For OFMAP a run is room for results; the array hands results over after
    each step and each is written to memory at once, its room freed when the write lands;
    spilled partial sums are read back into a later run once their write has landed.

    Banks: with ``ports_per_bank = 1`` the SRAM cannot take DMA data into the bank the array is
    using. An operand's run lives in bank ``run % banks``; data arriving for the bank of the
    array's current step of that operand is held back until the array starts a step on another
    bank or waits, and is then written at ``port_bytes_per_cycle``. Two or more ports (the
    default) never conflict, as SCALE-Sim assumes. Drains read between steps and do not conflict.

    Traced, the buffer draws each memory request from issue to completion on its ``requests``
    tracks and keeps an ``occupancy`` counter of the bytes of room taken.
    """

    kind = "scratchpad"

    capacity_bytes = Param(int, 65536, "bytes", "SRAM capacity, shared by the operands it holds", minimum=2)
    operands = Param(tuple, (), choices=OPERANDS, description="operands it holds (empty: those linked to it)")
    operand = Param(str, "", choices=("", *OPERANDS), description="shorthand for operands: [one]")
    buffering = Param(str, "double", choices=BUFFERINGS, description="prefetch two runs, or as far as room allows")
    banks = Param(int, 1, "banks", "banks runs are spread over (run j in bank j % banks)", minimum=1)
    ports_per_bank = Param(int, 2, "ports", "ports per bank; 1 makes DMA and array conflict on a bank", minimum=1)
    port_bytes_per_cycle = Param(
        float, 64.0, "bytes/cycle", "rate at which a port writes DMA data", minimum=MIN_BANDWIDTH
    )
    outstanding_reads = Param(int, 4, "requests", "most reads the DMA engine keeps in flight", minimum=1)

    compute = Port(RESPONSE, "serves tiles to (or takes results from) the array", multiple=True)
    memory = Port(REQUEST, "fills from and drains to the next level", peer=Memory)

    dram_read_bytes = Stat("bytes", "bytes fetched from the next level")
    dram_write_bytes = Stat("bytes", "bytes written to the next level")
    unique_bytes = Stat("bytes", "distinct bytes of the operands: the least it can move")
    excess_bytes = Stat("bytes", "bytes moved beyond the operands' distinct bytes (refetches, spills)")
    resident = Stat("flag", "1 if every operand it staged stayed whole in the buffer")
    dram_first_cycle = Stat("cycles", "first cycle of traffic below, from layer start")
    dram_last_cycle = Stat("cycles", "last cycle of traffic below, from layer start")
    requests = Stat("requests", "requests made below (tile fetches, result writes, read-backs)")
    avg_request_latency_cycles = Stat("cycles", "mean time from issuing a request to its completion")
    peak_occupancy_bytes = Stat("bytes", "most bytes held at once")
    bank_conflict_cycles = Stat("cycles", "cycles DMA data waited for a bank the array was using")

    def check(self) -> None:
        if self.operand and self.operands:
            raise DesimError("give operand or operands, not both", key=f"{self.name}.operand")
        if self.ports_per_bank == 1 and self.banks > self.capacity_bytes:
            raise DesimError(
                f"cannot split {self.capacity_bytes} bytes into {self.banks} banks", key=f"{self.name}.banks"
            )

    def holds(self) -> tuple[str, ...]:
        return (self.operand,) if self.operand else self.operands

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
        self._room: simpy.Event | None = None

    def begin_layer(self, layer: Layer) -> None:
        super().begin_layer(layer)
        self._stages: dict[str, _Stage] = {}
        self._occupied = 0
        self._in_flight = 0
        self.slot_freed_by: Request | None = None  # the read whose arrival last freed a request slot
        self._latency_total = 0

    def end_layer(self) -> None:
        stages = self._stages.values()
        firsts = [stage.first_traffic for stage in stages if stage.first_traffic is not None]
        if firsts:
            # Traffic served within its issue cycle (ideal memory) still occupies that cycle.
            first, last = min(firsts), max(stage.last_traffic for stage in stages)
            self.dram_first_cycle = first - self.layer_start
            self.dram_last_cycle = max(last - 1, first) - self.layer_start
        if self.requests:
            self.avg_request_latency_cycles = self._latency_total / self.requests
        moved = self.dram_read_bytes + self.dram_write_bytes
        self.unique_bytes = sum(stage.plan.unique_bytes for stage in stages)
        self.excess_bytes = moved - self.unique_bytes
        self.resident = int(bool(self._stages) and all(stage.plan.resident for stage in stages))
        self.traffic = {operand: stage.traffic() for operand, stage in self._stages.items()}

    def stage(self, operand: str, plan: StagingPlan) -> _Stage:
        """Serve ``operand`` this layer by ``plan``: prefetch its runs in order, take its results."""
        stage = _Stage(self, operand, plan)
        self._stages[operand] = stage
        self.occupy(0)  # a trace shows the level from the layer's start
        self.env.process(stage.prefetch())
        return stage

    # -- shared by the operands ------------------------------------------------------------------

    def request(self, stage: _Stage, tile: Tile, *, write: bool) -> Request:
        """Read ``tile`` from (or write it to) the next level for ``stage``."""
        now = int(self.env.now)
        if stage.first_traffic is None:
            stage.first_traffic = now
        route = self.memory.route
        if write:
            self.dram_write_bytes += tile.nbytes
            stage.written += tile.nbytes
            request = route.write(tile, self)
        else:
            self.dram_read_bytes += tile.nbytes
            stage.read += tile.nbytes
            request = route.read(tile, self)
        self.requests += 1
        request.event.callbacks.append(lambda event: self._note_done(stage, event))
        if self.trace is not None:
            request.event.callbacks.append(lambda event: self._trace_request(stage, event))
        return request

    def _note_done(self, stage: _Stage, event: simpy.Event) -> None:
        now = int(self.env.now)
        stage.last_traffic = now
        self._latency_total += now - event.value.issued_at

    def _trace_request(self, stage: _Stage, event: simpy.Event) -> None:
        request = event.value
        if self.trace is not None:
            kind = "write" if request.is_write else "read back" if stage.plan.after_write else "fetch"
            name = f"{kind} {stage.operand}"
            self.trace.span(self.name, "requests", name, request.issued_at, self.env.now, bytes=request.nbytes)

    def occupy(self, nbytes: int) -> None:
        """Room of ``nbytes`` was taken (or, negative, freed) by one of the operands."""
        self._occupied += nbytes
        if self._occupied > self.peak_occupancy_bytes:
            self.peak_occupancy_bytes = self._occupied
        if self.trace is not None:
            self.trace.counter(self.name, "occupancy", self.env.now, self._occupied, "bytes")

    def room(self) -> simpy.Event:
        """An event that fires when room or a request slot frees (every waiting prefetcher re-checks)."""
        if self._room is None:
            self._room = self.env.event()
        return self._room

    def wake_room(self) -> None:
        if self._room is not None:
            event, self._room = self._room, None
            event.succeed()


class _Stage:
    """One operand staged in a scratchpad for one layer: the array's side of the contract, and its prefetcher."""

    def __init__(self, buffer: Scratchpad, operand: str, plan: StagingPlan) -> None:
        runs = len(plan.hold)
        self.buffer = buffer
        self.env = buffer.env
        self.operand = operand
        self.plan = plan
        self.single_ported = buffer.single_ported
        self.ready = [False] * runs
        self.runs = [_Run() for _ in range(runs)]
        self.used = self.held = 0
        self.read = self.written = 0
        self.first_traffic: int | None = None
        self.last_traffic = 0
        self._writes: list[Request] = []
        self._writes_pending = 0
        self._write_issued: simpy.Event | None = None
        self._freed_by: Request | None = None
        self._last_write: Request | None = None
        self._drained: simpy.Event | None = None
        self._waiter: tuple[int, simpy.Event] | None = None
        self._busy_bank = -1
        self._deferred: list[int] = []

    def traffic(self) -> dict[str, int]:
        start = self.buffer.layer_start
        first = self.first_traffic
        return {
            "read_bytes": self.read,
            "write_bytes": self.written,
            "first_cycle": first - start if first is not None else 0,
            "last_cycle": max(self.last_traffic - 1, first) - start if first is not None else 0,
        }

    # -- the array's side ---------------------------------------------------------------------

    def arrival(self, run: int) -> simpy.Event:
        event = self.env.event()
        self._waiter = (run, event)
        self._write_in(lambda held: True)  # the array is waiting: every bank is free
        return event

    def phases(self, run: int, ready_at: float) -> list[Phase]:
        record, label = self.runs[run], self.buffer.capacity_label
        phases: list[Phase] = [
            (record.slot_at, record.slot_freed_by, label),
            (record.reserved_at, record.freed_by, label),
            (record.issued_at, record.depends_on, label),
            (record.arrived_at, record.request, label),
        ]
        if self.single_ported:  # only then can arrived data wait for its bank
            phases.append((ready_at, None, self.buffer.bank_label))
        return phases

    def release(self, run: int) -> None:
        self.used -= self.plan.hold[run]
        self.held -= 1
        self.buffer.occupy(-self.plan.hold[run])
        self.buffer.wake_room()

    def write(self, nbytes: int) -> None:
        tile = self.plan.writes[len(self._writes)]
        assert tile.nbytes == nbytes, f"{self.buffer.name}: write of {nbytes} bytes, planned {tile.nbytes}"
        frees = self.plan.frees[len(self._writes)] if self.plan.frees is not None else nbytes
        request = self.buffer.request(self, tile, write=True)
        self._writes.append(request)
        self._writes_pending += 1
        request.event.callbacks.append(lambda event: self._written(event, frees))
        if self._write_issued is not None:
            event, self._write_issued = self._write_issued, None
            event.succeed()

    def drained(self) -> simpy.Event:
        self._drained = self.env.event()
        if not self._writes_pending:
            self._drained.succeed()
        return self._drained

    def drain_phases(self, until: float) -> list[Phase]:
        return [(until, self._last_write, self.buffer.capacity_label)]

    def begin_step(self, run: int) -> None:
        self._busy_bank = run % self.buffer.banks
        self._write_in(lambda held: held % self.buffer.banks != self._busy_bank)

    def end_step(self) -> None:
        self._busy_bank = -1

    def _write_in(self, free) -> None:
        """Start writing in the held-back runs whose bank ``free(run)`` says the array leaves alone."""
        if not self._deferred:
            return
        keep = []
        for run in self._deferred:
            if free(run):
                cycles = math.ceil(self.plan.fetch[run] / self.buffer.port_bytes_per_cycle)
                self.buffer.bank_conflict_cycles += self.env.now - self.runs[run].arrived_at + cycles
                self.env.timeout(cycles, run).callbacks.append(self._written_in)
            else:
                keep.append(run)
        self._deferred = keep

    # -- the prefetcher ------------------------------------------------------------------------

    def prefetch(self) -> ProcessGenerator:
        env, buffer, plan = self.env, self.buffer, self.plan
        budget = plan.budget
        limit = 2 if buffer.buffering == "double" and not plan.resident and plan.after_write is None else math.inf
        after_write = plan.after_write
        outstanding = buffer.outstanding_reads
        for run, (fetch, hold) in enumerate(zip(plan.fetch, plan.hold, strict=True)):
            record = self.runs[run]
            if buffer._in_flight >= outstanding:
                while buffer._in_flight >= outstanding:
                    yield buffer.room()
                record.slot_freed_by = buffer.slot_freed_by
            record.slot_at = env.now
            self._freed_by = None
            while self.held >= limit or self.used + hold > budget:
                yield buffer.room()
            record.reserved_at, record.freed_by = env.now, self._freed_by
            self.used += hold
            self.held += 1
            buffer.occupy(hold)
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
                request = buffer.request(self, plan.tiles[run], write=False)
                record.request = request
                buffer._in_flight += 1
                request.event.callbacks.append(lambda event, run=run: self._arrived(run, event.value))
            else:
                self._arrived(run)

    def _arrived(self, run: int, request: Request | None = None) -> None:
        self.runs[run].arrived_at = self.env.now
        if request is not None:
            self.buffer._in_flight -= 1
            self.buffer.slot_freed_by = request
            self.buffer.wake_room()
        if self.single_ported and run % self.buffer.banks == self._busy_bank and self.plan.fetch[run]:
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

    def _written(self, event: simpy.Event, frees: int) -> None:
        request = event.value
        self.used -= frees
        self.buffer.occupy(-frees)
        self._writes_pending -= 1
        self._freed_by = self._last_write = request
        self.buffer.wake_room()
        if not self._writes_pending and self._drained is not None and not self._drained.triggered:
            self._drained.succeed()
