"""Ports: the named connection points a component declares, with a role and the peer it needs.

A link in the system graph runs from a ``REQUEST`` port (the side that asks for data, such as an
array reading its buffer) to a ``RESPONSE`` port (the side that serves it). A request port names
the class of component it must reach (``peer``); interconnects in between are transparent, so
``Port(REQUEST, ..., peer=Memory)`` on a buffer is satisfied by a path buffer -> bus -> DRAM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from desim.component import Component
    from desim.link import Link
    from desim.route import Route

REQUEST = "request"
RESPONSE = "response"


class Port:
    """One declared port of a component.

    Args:
        role: ``REQUEST`` (this side issues requests) or ``RESPONSE`` (this side serves them).
        description: one line saying what travels through the port.
        peer: for a request port, the component class (or classes) the port must reach.
        required: whether validation fails when the port is left unconnected.
        multiple: whether more than one link may attach (a bus serving many clients; a request
            port in front of several next levels, bound to one route per link in node-name order).
    """

    def __init__(
        self,
        role: str,
        description: str = "",
        *,
        peer: type | tuple[type, ...] | None = None,
        required: bool = True,
        multiple: bool = False,
    ) -> None:
        if role not in (REQUEST, RESPONSE):
            raise ValueError(f"port role must be {REQUEST!r} or {RESPONSE!r}, got {role!r}")
        if peer is not None and role != REQUEST:
            raise ValueError("only request ports name a peer")
        self.role = role
        self.description = description
        self.peer = peer
        self.required = required
        self.multiple = multiple
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        # Elaboration stores a PortBinding in the instance dict under the port's name, which
        # shadows this (non-data) descriptor.
        if instance is None:
            return self
        raise AttributeError(f"port {self.name!r} is not bound: the system is not elaborated yet")

    def peer_names(self) -> str:
        if self.peer is None:
            return "any component"
        peers = self.peer if isinstance(self.peer, tuple) else (self.peer,)
        return " or ".join(p.__name__ for p in peers)

    def describe(self) -> str:
        """One line for ``desim components``."""
        extras = []
        if self.peer is not None:
            extras.append(f"to {self.peer_names()}")
        if self.multiple:
            extras.append("many links")
        if not self.required:
            extras.append("optional")
        extra = f", {', '.join(extras)}" if extras else ""
        return f"{self.name} ({self.role}{extra}): {self.description}"


@dataclass
class PortBinding:
    """What a request port leads to: the peer component, the nodes and links on the way, the route.

    ``peer``, ``nodes`` and ``links`` are known once the system is validated; ``route`` (the hops
    as object references) once it is elaborated.
    """

    peer: Component
    nodes: list[str]
    links: list[Link]
    route: Route | None = None
