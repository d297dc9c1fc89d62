"""The scratchpad: a double-buffered on-chip SRAM that stages one operand for the array."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from desim import REQUEST, RESPONSE, Buffer, Memory, Param, Port, ProcessGenerator, Stat
from desim.workload import Layer

if TYPE_CHECKING:
    import simpy

    from desim.system import System


class Scratchpad(Buffer):
    """An SRAM scratchpad for one operand, double-buffered: the array reads one half, the other fills.

    Timing model. For IFMAP and FILTER, a prefetcher walks the array's tile schedule in order and
    fetches tile ``j`` from main memory as soon as the buffer holds fewer than two tiles and has
    room for it; the array waits until its tile is resident and releases it after the last step
    that reads it. For OFMAP, the array reserves room for a step's results before the step and
    hands them over after it; a drainer writes them to main memory in order and frees the room as
    each write completes. The array never stages more than half the capacity at once (larger
    tiles are streamed in parts), so one half can fill or drain while the other is in use.
    Assumptions: the SRAM keeps up with the array (no banks or port conflicts yet), and one
    memory request per buffer is in flight at a time (its transactions pipeline).
    """

    kind = "scratchpad"

    capacity_bytes = Param(int, 65536, "bytes", "SRAM capacity", minimum=2)

    compute = Port(RESPONSE, "serves tiles to (or takes results from) the array")
    memory = Port(REQUEST, "fills from and drains to main memory", peer=Memory)

    dram_read_bytes = Stat("bytes", "bytes fetched from main memory")
    dram_write_bytes = Stat("bytes", "bytes written to main memory")
    dram_first_cycle = Stat("cycles", "first cycle of memory traffic, from layer start")
    dram_last_cycle = Stat("cycles", "last cycle of memory traffic, from layer start")
    tiles = Stat("tiles", "tiles fetched (IFMAP, FILTER) or result blocks drained (OFMAP)")
    peak_occupancy_bytes = Stat("bytes", "most bytes held at once")

    @property
    def max_tile_bytes(self) -> int:
        """The most the array may stage at once: half the SRAM, so the other half can fill."""
        return self.capacity_bytes // 2

    def elaborate(self, env: simpy.Environment, system: System) -> None:
        super().elaborate(env, system)
        self._runs: list[int] = []
        self._used = 0
        self._held = 0
        self._room: simpy.Event | None = None
        self._arrival: tuple[int, simpy.Event] | None = None
        self._results: deque[int] = deque()
        self._wake_drainer: simpy.Event | None = None
        self._drained: simpy.Event | None = None
        self._closing = False
        self._first_traffic: int | None = None
        self._last_traffic = 0
        self.fetched = 0

    def begin_layer(self, layer: Layer) -> None:
        super().begin_layer(layer)
        self._first_traffic = None
        self._last_traffic = 0

    def end_layer(self) -> None:
        if self._first_traffic is not None:
            # Traffic served within its issue cycle (ideal memory) still occupies that cycle.
            self.dram_first_cycle = self._first_traffic - self.layer_start
            self.dram_last_cycle = max(self._last_traffic - 1, self._first_traffic) - self.layer_start

    def serve(self, runs: list[int] | None) -> None:
        """Serve the array this layer: prefetch tile runs of these bytes, in order (IFMAP, FILTER),
        or, with ``runs=None`` (OFMAP), take results and drain them to memory."""
        self._used = 0
        self._held = 0
        self.fetched = 0
        if runs is None:
            self._closing = False
            self._drained = self.env.event()
            self.env.process(self._drain())
        else:
            self._runs = runs
            self.env.process(self._prefetch(runs))

    # -- IFMAP / FILTER: the array's side -------------------------------------------------------

    def arrival(self, run: int) -> simpy.Event:
        """An event that fires once tile run ``run`` is resident (runs arrive in order)."""
        event = self.env.event()
        self._arrival = (run, event)
        return event

    def release(self, run: int) -> None:
        """The array is done with tile run ``run``: free its room for the next."""
        self._used -= self._runs[run]
        self._held -= 1
        self._wake_room()

    # -- IFMAP / FILTER: the prefetcher ---------------------------------------------------------

    def _prefetch(self, runs: list[int]) -> ProcessGenerator:
        capacity = self.capacity_bytes
        for index, nbytes in enumerate(runs):
            while self._held >= 2 or self._used + nbytes > capacity:
                self._room = self.env.event()
                yield self._room
            self._used += nbytes
            self._held += 1
            self._note_occupancy()
            if nbytes:
                yield self._transfer(nbytes, write=False)
            self.fetched = index + 1
            self.tiles += 1
            if self._arrival is not None and self._arrival[0] == index:
                event = self._arrival[1]
                self._arrival = None
                event.succeed()

    # -- OFMAP: the array's side ----------------------------------------------------------------

    @property
    def free_bytes(self) -> int:
        return self.capacity_bytes - self._used

    def room_for(self, nbytes: int) -> simpy.Event:
        """An event that fires once ``nbytes`` of room are free."""
        return self.env.process(self._await_room(nbytes))

    def _await_room(self, nbytes: int) -> ProcessGenerator:
        while self.free_bytes < nbytes:
            self._room = self.env.event()
            yield self._room

    def reserve(self, nbytes: int) -> None:
        self._used += nbytes
        self._note_occupancy()

    def write(self, nbytes: int) -> None:
        """Results are ready: queue them for the drainer."""
        if nbytes:
            self._results.append(nbytes)
            self._wake()

    def drained(self) -> simpy.Event:
        """No more results this layer; an event that fires once all have reached memory."""
        self._closing = True
        self._wake()
        return self._drained

    # -- OFMAP: the drainer ---------------------------------------------------------------------

    def _drain(self) -> ProcessGenerator:
        while True:
            if not self._results:
                if self._closing:
                    self._drained.succeed()
                    return
                self._wake_drainer = self.env.event()
                yield self._wake_drainer
                continue
            nbytes = self._results.popleft()
            yield self._transfer(nbytes, write=True)
            self.tiles += 1
            self._used -= nbytes
            self._wake_room()

    # -- shared --------------------------------------------------------------------------------

    def _transfer(self, nbytes: int, *, write: bool) -> simpy.Event:
        now = int(self.env.now)
        if self._first_traffic is None:
            self._first_traffic = now
        route = self.memory.route
        if write:
            self.dram_write_bytes += nbytes
            event = route.write(nbytes)
        else:
            self.dram_read_bytes += nbytes
            event = route.read(nbytes)
        event.callbacks.append(self._note_traffic_end)
        return event

    def _note_traffic_end(self, _: simpy.Event) -> None:
        self._last_traffic = int(self.env.now)

    def _note_occupancy(self) -> None:
        if self._used > self.peak_occupancy_bytes:
            self.peak_occupancy_bytes = self._used

    def _wake(self) -> None:
        if self._wake_drainer is not None:
            event, self._wake_drainer = self._wake_drainer, None
            event.succeed()

    def _wake_room(self) -> None:
        if self._room is not None:
            event, self._room = self._room, None
            event.succeed()
