"""Channels: FIFO servers that move transfers at a bandwidth and then delay them by a latency.

A :class:`Transfer` is one transaction (a few KiB, never single bytes) moving hop by hop along a
route. Every hop is something with a ``submit(transfer)`` method; a :class:`Channel` is the common
one: links, buses and memories are built on it. Two clients that submit to the same channel queue
behind each other; that queueing is the contention, nothing computes it in closed form.

Time is integer cycles, but bandwidth need not divide the transfer size: a channel keeps its busy
time exactly, as an integer count of ``1/p`` cycles for a bandwidth ``p/q`` bytes per cycle, and
releases each transfer at the first whole cycle after it has been served. Back-to-back transfers
therefore see the exact bandwidth, with no rounding lost per transfer.

Every transfer keeps a log of its passage (one :class:`Passage` per non-ideal hop), which the
stall ledger reads to say where a request spent its time. Time queued is split in two: waiting
while the server moved *other clients'* transfers is contention (``queue``); waiting behind the
same client's earlier transfers is that client's own traffic being served (``service``). The
split is exact: the channel keeps a running total of service time per client.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    import simpy

    from desim.component import ProcessGenerator
    from desim.data import Tile


class Completion(Protocol):
    """Told when a transfer has passed its last hop."""

    is_write: bool

    def transfer_done(self, transfer: Transfer) -> None: ...


class Hop(Protocol):
    """Anything a transfer can pass through, naming the ledger labels its time there can be charged to."""

    def submit(self, transfer: Transfer) -> None: ...

    def stall_causes(self) -> list[str]: ...


class Passage(NamedTuple):
    """How one transfer crossed one channel, in cycles from its arrival there."""

    channel: Channel
    queued: float
    """Cycles waiting while the server moved other clients' transfers (contention)."""
    behind_own: float
    """Cycles waiting while the server moved the same client's earlier transfers."""
    service: float
    """Cycles from the start of its own service to its release (at a whole cycle)."""
    latency: int
    """Cycles of pipelined latency after release."""

    def segments(self) -> list[tuple[str, float]]:
        return self.channel.segments(self)


class Nested(NamedTuple):
    """A wait at a hop for requests that hop issued downstream (a storage level fetching a miss).

    From ``since`` (when the transfer reached the hop) until ``request`` completed, the transfer
    waited on that request: the time is the request's own timeline, so blame reaches the deepest
    cause below. Time before the request was issued is charged to ``before``.
    """

    since: int
    request: Timed
    before: str | None

    def segments(self) -> list[tuple[str, float]]:
        return clipped(self.request, self.since, self.before)


class Timed(Protocol):
    """Something that can say where its time went: a request."""

    issued_at: int

    def timeline(self) -> list[tuple[str, float]]: ...


def clipped(request: Timed, since: float, before: str | None) -> list[tuple[str, float]]:
    """``request``'s timeline from time ``since`` on; time from ``since`` to its issue goes to ``before``."""
    t = float(request.issued_at)
    if since <= t:
        if t == since:
            return request.timeline()
        if before is None:
            raise AssertionError(f"a request issued {t - since} cycles after the wait began, with no cause named")
        return [(before, t - since), *request.timeline()]
    segments = []
    for label, cycles in request.timeline():
        end = t + cycles
        if end > since:
            segments.append((label, end - max(t, since)))
        t = end
    return segments


class Transfer:
    """One transaction: bytes ``[offset, offset + nbytes)`` of its owner's tile, moving through ``hops``.

    When it has passed the last hop it reports to ``owner`` (a :class:`~desim.route.Request`).
    Its :attr:`address` and :attr:`tile` are worked out from the owner's tile when first asked.
    """

    __slots__ = (
        "_address",
        "client",
        "hops",
        "log",
        "nbytes",
        "offset",
        "owner",
        "position",
        "snapshot",
        "submitted_at",
    )

    def __init__(self, nbytes: int, hops: tuple[Hop, ...], owner: Completion, offset: int = 0) -> None:
        self.nbytes = nbytes
        self.hops = hops
        self.position = 0
        self.owner = owner
        self.client = getattr(owner, "client", owner)
        self.offset = offset
        self._address: int | None = None
        self.submitted_at = 0
        self.snapshot = 0
        self.log: list[Passage | Nested] = []

    @property
    def tile(self) -> Tile:
        """The bytes this transaction moves, as a tile of the owner's tensor."""
        return self.owner.tile.part(self.offset, self.nbytes)

    @property
    def address(self) -> int:
        """The address of the transaction's first byte."""
        if self._address is None:
            tile = getattr(self.owner, "tile", None)
            self._address = tile.address_at(self.offset) if tile is not None else self.offset
        return self._address

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
    An ideal channel (infinite bandwidth, zero latency, no extra service) passes transfers on at once.

    Subclasses change the order of service (:meth:`_pick`) and its length (:meth:`_extra_ticks`);
    one whose service may take longer than its bytes need says so with ``variable_service``.
    :meth:`stall_causes` and :meth:`segments` share the tests that decide which labels a transfer's
    time can be charged to, so the ledger is never handed a label the channel did not declare.
    Counters (``bytes``, ``transfers``, ``busy_cycles``, ``wait_cycles``, ``transit_cycles``,
    ``max_queue``) cover the time since the last :meth:`reset_counters`.
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        bandwidth_bytes_per_cycle: float = math.inf,
        latency_cycles: int = 0,
        *,
        variable_service: bool = False,
    ) -> None:
        self.env = env
        self.name = name
        self.queue_label = f"{name} queue"
        self.service_label = f"{name} service"
        self.latency_label = f"{name} latency"
        self.bandwidth_bytes_per_cycle = bandwidth_bytes_per_cycle
        self.latency_cycles = latency_cycles
        self.infinite = math.isinf(bandwidth_bytes_per_cycle)
        self.takes_time = not self.infinite or variable_service
        """Whether serving a transfer can take time (and so others can queue behind it)."""
        self.ideal = not self.takes_time and latency_cycles == 0
        if self.infinite:
            self._ticks_per_cycle, self._ticks_per_byte = 1, 0
        else:
            # The decimal the user wrote (0.1 is 1/10, not the nearest binary fraction), exactly.
            ratio = Fraction(repr(float(bandwidth_bytes_per_cycle)))
            # Service of n bytes lasts n/ratio cycles = n*q ticks of 1/p cycle.
            self._ticks_per_cycle = ratio.numerator
            self._ticks_per_byte = ratio.denominator
        self._queue: deque[Transfer] = deque()
        self._wake: simpy.Event | None = None
        self._free_at_ticks = 0
        self._serving: object = None
        self._served_by: dict[object, int] = {}
        self.observers: list[Callable[[Transfer, float, float], None]] = []
        """Called as ``observe(transfer, start, finish)`` (exact cycles) when a transfer is served."""
        self.reset_counters()
        if not self.ideal:
            env.process(self._serve())

    def stall_causes(self) -> list[str]:
        """Every ledger label :meth:`segments` can return."""
        causes = [self.queue_label, self.service_label] if self.takes_time else []
        return [*causes, self.latency_label] if self.latency_cycles else causes

    def segments(self, passage: Passage) -> list[tuple[str, float]]:
        """Where a transfer spent its time crossing this channel: ``(label, cycles)`` in time order."""
        segments = []
        if self.takes_time:
            if passage.queued:
                segments.append((self.queue_label, passage.queued))
            segments.append((self.service_label, passage.behind_own + passage.service))
        if self.latency_cycles:
            segments.append((self.latency_label, passage.latency))
        return segments

    def reset_counters(self) -> None:
        self.bytes = 0
        self.transfers = 0
        self._busy_ticks = 0
        self._wait_ticks = 0
        self._transit_ticks = 0
        self.max_queue = len(self._queue)

    @property
    def busy_cycles(self) -> float:
        """Cycles spent moving data since the counters were reset."""
        return self._busy_ticks / self._ticks_per_cycle

    @property
    def wait_cycles(self) -> float:
        """Cycles transfers spent queued before service, summed over transfers."""
        return self._wait_ticks / self._ticks_per_cycle

    @property
    def transit_cycles(self) -> float:
        """Cycles from arrival to leaving (queue, service, latency), summed over transfers."""
        return self._transit_ticks / self._ticks_per_cycle

    def submit(self, transfer: Transfer) -> None:
        self.bytes += transfer.nbytes
        self.transfers += 1
        now = int(self.env.now)
        transfer.submitted_at = now
        if self.ideal:
            for observe in self.observers:
                observe(transfer, now, now)
            transfer.advance()
            return
        # What the server has yet to do for the transfer in service counts as served *after* this
        # arrival, so the growth of the client's running total is exactly its share of this wait.
        client = transfer.client
        own = self._served_by.get(client, 0)
        if self._serving is client:
            own -= max(0, self._free_at_ticks - now * self._ticks_per_cycle)
        transfer.snapshot = own
        queue = self._queue
        queue.append(transfer)
        if len(queue) > self.max_queue:
            self.max_queue = len(queue)
        if self._wake is not None:
            wake, self._wake = self._wake, None
            wake.succeed()

    def lane(self, transfer: Transfer) -> str:
        """The trace track a transfer's service is drawn on (a DRAM draws each bank apart)."""
        return "transfers"

    def _pick(self) -> Transfer:
        """The next transfer to serve: the oldest."""
        return self._queue.popleft()

    def _extra_ticks(self, transfer: Transfer) -> int:
        """Ticks of service beyond moving the bytes (a DRAM's row miss, say)."""
        return 0

    def _serve(self) -> ProcessGenerator:
        env = self.env
        queue = self._queue
        latency = self.latency_cycles
        tpc, tpb = self._ticks_per_cycle, self._ticks_per_byte
        served_by = self._served_by
        while True:
            if not queue:
                self._wake = env.event()
                yield self._wake
                continue
            transfer = self._pick()
            arrived = transfer.submitted_at * tpc
            start = max(arrived, self._free_at_ticks)
            service = transfer.nbytes * tpb + self._extra_ticks(transfer)
            finish = start + service
            self._free_at_ticks = finish
            self._busy_ticks += service
            waited = start - arrived
            self._wait_ticks += waited
            client = transfer.client
            behind_own = min(waited, served_by.get(client, 0) - transfer.snapshot) if waited else 0
            served_by[client] = served_by.get(client, 0) + service
            self._serving = client
            if self.observers:
                for observe in self.observers:
                    observe(transfer, start / tpc, finish / tpc)
            done_at = -(-finish // tpc)
            self._transit_ticks += done_at * tpc - arrived + latency * tpc
            transfer.log.append(
                Passage(self, (waited - behind_own) / tpc, behind_own / tpc, done_at - start / tpc, latency)
            )
            if done_at > env.now:
                yield env.timeout(done_at - env.now)
            if latency:
                env.timeout(latency, transfer).callbacks.append(_advance_after_latency)
            else:
                transfer.advance()
