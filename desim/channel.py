"""Channels: FIFO servers that move transfers at a bandwidth and then delay them by a latency.

A :class:`Transfer` is one transaction (a few KiB, never single bytes) moving hop by hop along a
route. Every hop is something with a ``submit(transfer)`` method; a :class:`Channel` is the common
one: links, buses and simple memories are built on it. Two clients that submit to the same
channel queue behind each other; that queueing is the contention, nothing computes it in closed
form.

Time is integer cycles, but bandwidth need not divide the transfer size: a channel keeps its busy
time exactly, as an integer count of ``1/p`` cycles for a bandwidth ``p/q`` bytes per cycle, and
releases each transfer at the first whole cycle after it has been served. Back-to-back transfers
therefore see the exact bandwidth, with no rounding lost per transfer.
"""

from __future__ import annotations

import math
from collections import deque
from fractions import Fraction
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import simpy

    from desim.component import ProcessGenerator


class Completion(Protocol):
    """Told when a transfer has passed its last hop."""

    is_write: bool

    def transfer_done(self, transfer: Transfer) -> None: ...


class Hop(Protocol):
    """Anything a transfer can pass through."""

    def submit(self, transfer: Transfer) -> None: ...


class Transfer:
    """One transaction: ``nbytes`` moving through ``hops`` in order, then reported to ``owner``."""

    __slots__ = ("hops", "nbytes", "owner", "position", "submitted_at")

    def __init__(self, nbytes: int, hops: tuple[Hop, ...], owner: Completion) -> None:
        self.nbytes = nbytes
        self.hops = hops
        self.position = 0
        self.owner = owner
        self.submitted_at = 0

    def start(self) -> None:
        """Submit to the first hop."""
        self.hops[0].submit(self)

    def advance(self) -> None:
        """Hand over to the next hop, or report completion after the last one."""
        self.position += 1
        if self.position < len(self.hops):
            self.hops[self.position].submit(self)
        else:
            self.owner.transfer_done(self)


def _advance_after_latency(event: simpy.Event) -> None:
    event.value.advance()


class Channel:
    """A FIFO server with a bandwidth (bytes/cycle, may be infinite) and a latency (cycles).

    A transfer waits in the queue, is served for ``nbytes / bandwidth`` cycles, and reaches the
    next hop ``latency_cycles`` later; the latency is pipelined (it does not hold the server).
    An ideal channel (infinite bandwidth, zero latency) passes transfers on at once.

    Counters (``bytes``, ``transfers``, ``busy_cycles``, ``wait_cycles``, ``max_queue``) cover the
    time since the last :meth:`reset_counters`; owners copy them into their stats.
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        bandwidth_bytes_per_cycle: float = math.inf,
        latency_cycles: int = 0,
    ) -> None:
        self.env = env
        self.name = name
        self.bandwidth_bytes_per_cycle = bandwidth_bytes_per_cycle
        self.latency_cycles = latency_cycles
        self.infinite = math.isinf(bandwidth_bytes_per_cycle)
        self.ideal = self.infinite and latency_cycles == 0
        if not self.infinite:
            # The decimal the user wrote (0.1 is 1/10, not the nearest binary fraction), exactly.
            ratio = Fraction(repr(float(bandwidth_bytes_per_cycle)))
            # Service of n bytes lasts n/ratio cycles = n*q ticks of 1/p cycle.
            self._ticks_per_cycle = ratio.numerator
            self._ticks_per_byte = ratio.denominator
        self._queue: deque[Transfer] = deque()
        self._wake: simpy.Event | None = None
        self._free_at_ticks = 0
        self.reset_counters()
        if not self.ideal:
            env.process(self._serve())

    def reset_counters(self) -> None:
        self.bytes = 0
        self.transfers = 0
        self._busy_ticks = 0
        self._wait_ticks = 0
        self.max_queue = len(self._queue)

    @property
    def busy_cycles(self) -> float:
        """Cycles spent moving data since the counters were reset."""
        return self._busy_ticks / self._ticks_per_cycle if not self.infinite else 0.0

    @property
    def wait_cycles(self) -> float:
        """Cycles transfers spent queued before service, summed over transfers."""
        return self._wait_ticks / self._ticks_per_cycle if not self.infinite else 0.0

    def submit(self, transfer: Transfer) -> None:
        self.bytes += transfer.nbytes
        self.transfers += 1
        if self.ideal:
            transfer.advance()
            return
        transfer.submitted_at = int(self.env.now)
        queue = self._queue
        queue.append(transfer)
        if len(queue) > self.max_queue:
            self.max_queue = len(queue)
        if self._wake is not None:
            wake, self._wake = self._wake, None
            wake.succeed()

    def _serve(self) -> ProcessGenerator:
        env = self.env
        queue = self._queue
        latency = self.latency_cycles
        infinite = self.infinite
        while True:
            if not queue:
                self._wake = env.event()
                yield self._wake
                continue
            transfer = queue.popleft()
            if not infinite:
                tpc = self._ticks_per_cycle
                start = max(transfer.submitted_at * tpc, self._free_at_ticks)
                service = transfer.nbytes * self._ticks_per_byte
                finish = start + service
                self._free_at_ticks = finish
                self._busy_ticks += service
                self._wait_ticks += start - transfer.submitted_at * tpc
                done_at = -(-finish // tpc)
                if done_at > env.now:
                    yield env.timeout(done_at - env.now)
            if latency:
                env.timeout(latency, transfer).callbacks.append(_advance_after_latency)
            else:
                transfer.advance()
