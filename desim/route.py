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
    """A read or write of ``nbytes``, split into transfers; ``event`` fires when the last lands."""

    __slots__ = ("event", "is_write", "nbytes", "remaining")

    def __init__(self, event: simpy.Event, nbytes: int, is_write: bool, transfers: int) -> None:
        self.event = event
        self.nbytes = nbytes
        self.is_write = is_write
        self.remaining = transfers

    def transfer_done(self, transfer: Transfer) -> None:
        self.remaining -= 1
        if not self.remaining:
            self.event.succeed(self)


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
        self.request_latency = sum(getattr(hop, "latency_cycles", 0) for hop in to_peer)
        if isinstance(peer, Memory):
            served_by = peer.hop()
            self._read_hops = (served_by, *from_peer)
            self._write_hops = (*to_peer, served_by)
            self._transaction_bytes = peer.transaction_bytes

    def read(self, nbytes: int) -> simpy.Event:
        """Fetch ``nbytes`` from the memory at the end of the route; the event fires on arrival."""
        return self._issue(nbytes, self._read_hops, is_write=False, delay=self.request_latency)

    def write(self, nbytes: int) -> simpy.Event:
        """Send ``nbytes`` to the memory; the event fires when the memory has served the last byte."""
        return self._issue(nbytes, self._write_hops, is_write=True, delay=0)

    def _issue(self, nbytes: int, hops: tuple[Hop, ...], *, is_write: bool, delay: int) -> simpy.Event:
        if nbytes <= 0:
            raise ValueError(f"a transfer moves at least one byte, got {nbytes}")
        size = self._transaction_bytes
        full, rest = divmod(nbytes, size)
        request = Request(self.env.event(), nbytes, is_write, full + (1 if rest else 0))
        transfers = [Transfer(size, hops, request) for _ in range(full)]
        if rest:
            transfers.append(Transfer(rest, hops, request))
        if delay:
            self.env.timeout(delay).callbacks.append(lambda _: _start_all(transfers))
        else:
            _start_all(transfers)
        return request.event


def _start_all(transfers: list[Transfer]) -> None:
    for transfer in transfers:
        transfer.start()
