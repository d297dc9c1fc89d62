"""Routes: the path from a request port to the component it reaches, resolved before time starts.

The system finds paths with networkx once, at elaboration, and turns each into a tuple of hops
(direct object references to channels), so moving data never looks anything up in the graph.
A route that ends at a :class:`~desim.component.Memory` can :meth:`Route.read` and
:meth:`Route.write`: the bytes are split into the memory's transactions, each of which travels
the hops on its own, so transactions pipeline through links and memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from desim.channel import Hop, Nested, Transfer

if TYPE_CHECKING:
    import simpy

    from desim.component import Component
    from desim.data import Tile


class Request:
    """A read or write of ``tile`` by ``client``, split into transfers.

    ``event`` fires when the last transfer lands; ``last`` is that transfer (its log says where
    the request's final bytes spent their time), ``issued_at`` when the request was made and
    ``lead`` the latency segments a read crossed as a request message before its data moved.
    """

    __slots__ = ("client", "event", "is_write", "issued_at", "last", "lead", "nbytes", "remaining", "tile")

    def __init__(
        self,
        event: simpy.Event,
        tile: Tile,
        is_write: bool,
        transfers: int,
        client: object,
        issued_at: int,
        lead: tuple[tuple[str, int], ...],
    ) -> None:
        self.event = event
        self.tile = tile
        self.nbytes = tile.nbytes
        self.is_write = is_write
        self.remaining = transfers
        self.client = client
        self.issued_at = issued_at
        self.lead = lead
        self.last: Transfer | None = None

    def transfer_done(self, transfer: Transfer) -> None:
        self.remaining -= 1
        if not self.remaining:
            self.last = transfer
            self.event.succeed(self)

    def timeline(self) -> list[tuple[str, float]]:
        """Where the request spent its time, from ``issued_at`` to completion: ``(label, cycles)``."""
        segments = list(self.lead)
        for entry in self.last.log if self.last is not None else ():
            segments.extend(entry.segments())
        return segments


class Route:
    """The hops from a request port to its peer (``to_peer``) and back (``from_peer``).

    Args:
        env: the simulation environment.
        nodes: the node names along the path, requester first, peer last.
        peer: the component the route reaches.
        to_peer: hops crossed going towards the peer (links and interconnects).
        from_peer: hops crossed coming back.
    """

    def __init__(
        self,
        env: simpy.Environment,
        nodes: list[str],
        peer: Component,
        to_peer: tuple[Hop, ...],
        from_peer: tuple[Hop, ...],
    ) -> None:
        from desim.component import Memory

        self.env = env
        self.nodes = nodes
        self.peer = peer
        self.to_peer = to_peer
        self.from_peer = from_peer
        # A read request crosses the forward path as a small message: latency only.
        self.lead = tuple(
            (hop.latency_label, hop.latency_cycles) for hop in to_peer if getattr(hop, "latency_cycles", 0)
        )
        self.request_latency = sum(cycles for _, cycles in self.lead)
        self._read_hops: tuple[Hop, ...] = ()
        self._write_hops: tuple[Hop, ...] = ()
        if isinstance(peer, Memory):
            self._read_hops = (*peer.read_hops(), *from_peer)
            self._write_hops = (*to_peer, *peer.write_hops())
            self._transaction_bytes = peer.transaction_bytes

    def hops(self) -> list[Hop]:
        """Every distinct hop a read or write on this route may cross."""
        return list(dict.fromkeys((*self.to_peer, *self._read_hops, *self._write_hops, *self.from_peer)))

    def stall_causes(self) -> list[str]:
        """Every ledger label a request on this route can be charged to (hops below included)."""
        return list(dict.fromkeys(label for hop in self.hops() for label in hop.stall_causes()))

    def read(self, tile: Tile, client: object) -> Request:
        """Fetch ``tile`` from the memory at the end of the route for ``client``; the request's
        event fires when its last byte has arrived."""
        return self._issue(tile, self._read_hops, False, client, self.lead)

    def write(self, tile: Tile, client: object) -> Request:
        """Send ``tile`` to the memory; the request's event fires when the memory has taken it all."""
        return self._issue(tile, self._write_hops, True, client, ())

    def _issue(
        self,
        tile: Tile,
        hops: tuple[Hop, ...],
        is_write: bool,
        client: object,
        lead: tuple[tuple[str, int], ...],
    ) -> Request:
        nbytes = tile.nbytes
        if nbytes <= 0:
            raise ValueError(f"a transfer moves at least one byte, got {nbytes}")
        size = self._transaction_bytes
        full, rest = divmod(nbytes, size)
        request = Request(self.env.event(), tile, is_write, full + (1 if rest else 0), client, int(self.env.now), lead)
        transfers = [Transfer(size, hops, request, i * size) for i in range(full)]
        if rest:
            transfers.append(Transfer(rest, hops, request, full * size))
        if lead:
            self.env.timeout(self.request_latency).callbacks.append(lambda _: _start_all(transfers))
        else:
            _start_all(transfers)
        return request


def _start_all(transfers: list[Transfer]) -> None:
    for transfer in transfers:
        transfer.start()


def resume_after(transfer: Transfer, requests: list[Request], before: str | None = None) -> None:
    """Hold ``transfer`` at its hop until every one of ``requests`` has completed, then pass it on.

    This is how a component serves a transfer by issuing requests of its own further down (a
    storage level fetching what it lacks, a compressor passing on fewer bytes): the transfer's log
    records the wait as :class:`~desim.channel.Nested` on the request that completed last, so the
    stall ledger charges it to wherever that request spent its time, through any number of levels.
    ``before`` names the cause of any time between the transfer's arrival and that request's
    issue (None when the component issues its requests on arrival, as it must then).
    """
    pending = [request for request in requests if not request.event.triggered]
    if not pending:
        transfer.advance()
        return
    since = int(pending[0].event.env.now)
    left = [len(pending)]

    def done(event: simpy.Event) -> None:
        left[0] -= 1
        if not left[0]:
            transfer.log.append(Nested(since, event.value, before))
            transfer.advance()

    for request in pending:
        request.event.callbacks.append(done)
