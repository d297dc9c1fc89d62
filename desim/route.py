"""Routes: the path from a request port to the component it reaches, resolved before time starts.

The system finds paths with networkx once, at elaboration, and turns each into a tuple of hops
(direct object references to channels), so moving data never looks anything up in the graph.
A route that ends at a :class:`~desim.component.Memory` can :meth:`Route.read` and
:meth:`Route.write`: the bytes are split into the memory's transactions, each of which travels
the hops on its own, so transactions pipeline through links and memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from desim.channel import Hop, Transfer

if TYPE_CHECKING:
    import simpy

    from desim.component import Component


class Request:
    """A read or write of ``nbytes`` by ``client``, split into transfers.

    ``event`` fires when the last transfer lands; ``last`` is that transfer (its log says where
    the request's final bytes spent their time), ``issued_at`` when the request was made and
    ``lead`` the latency segments a read crossed as a request message before its data moved.
    """

    __slots__ = ("client", "event", "is_write", "issued_at", "last", "lead", "nbytes", "remaining")

    def __init__(
        self,
        event: simpy.Event,
        nbytes: int,
        is_write: bool,
        transfers: int,
        client: object,
        issued_at: int,
        lead: tuple[tuple[str, int], ...],
    ) -> None:
        self.event = event
        self.nbytes = nbytes
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
        for passage in self.last.log if self.last is not None else ():
            segments.extend(passage.channel.segments(passage))
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
            served_by = peer.hop()
            self._read_hops = (served_by, *from_peer)
            self._write_hops = (*to_peer, served_by)
            self._transaction_bytes = peer.transaction_bytes

    def hops(self) -> list[Hop]:
        """Every distinct hop a read or write on this route may cross."""
        return list(dict.fromkeys((*self.to_peer, *self._read_hops, *self.from_peer)))

    def read(self, nbytes: int, client: object, address: int = 0) -> Request:
        """Fetch ``nbytes`` from ``address`` in the memory at the end of the route for ``client``;
        the request's event fires on arrival."""
        return self._issue(nbytes, self._read_hops, False, client, address, self.lead)

    def write(self, nbytes: int, client: object, address: int = 0) -> Request:
        """Send ``nbytes`` to ``address``; the request's event fires when the memory has served them."""
        return self._issue(nbytes, self._write_hops, True, client, address, ())

    def _issue(
        self,
        nbytes: int,
        hops: tuple[Hop, ...],
        is_write: bool,
        client: object,
        address: int,
        lead: tuple[tuple[str, int], ...],
    ) -> Request:
        if nbytes <= 0:
            raise ValueError(f"a transfer moves at least one byte, got {nbytes}")
        size = self._transaction_bytes
        full, rest = divmod(nbytes, size)
        request = Request(
            self.env.event(), nbytes, is_write, full + (1 if rest else 0), client, int(self.env.now), lead
        )
        transfers = [Transfer(size, hops, request, address + i * size) for i in range(full)]
        if rest:
            transfers.append(Transfer(rest, hops, request, address + full * size))
        if lead:
            self.env.timeout(self.request_latency).callbacks.append(lambda _: _start_all(transfers))
        else:
            _start_all(transfers)
        return request


def _start_all(transfers: list[Transfer]) -> None:
    for transfer in transfers:
        transfer.start()
