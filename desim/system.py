"""A system: a networkx ``MultiDiGraph`` whose nodes are components and whose edges are links.

A node carries ``kind`` (a registered component kind) and ``params`` (a mapping); an edge runs
from a request port to a response port and carries ``src_port``, ``dst_port`` and optionally
``bandwidth_bytes_per_cycle`` and ``latency_cycles``. A request port takes one link, so an
edge's key is its ``src_port``: two nodes may be joined by several links, one per port (an array
reading IFMAP and FILTER from one unified buffer). Adding a global buffer, a second array or a
mesh is a change of graph, not of code.

Lifecycle: build the graph -> :meth:`System.validate` (kinds known, params typed, ports connected
with compatible roles, routes exist; errors name the node and port) -> :meth:`System.elaborate`
(fresh component instances on a SimPy environment, routes resolved to object references) -> run.

A system keeps its own copy of the graph, with nodes and links in name order: the order in which
a file lists its components never changes what is simulated or reported, and nothing done to the
system (a sweep's :meth:`System.with_param`) reaches the caller's graph.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx

from desim.channel import Channel
from desim.component import Component, Compute, Interconnect, Memory
from desim.errors import DesimError
from desim.link import LINK_PARAMS, Link
from desim.params import Param
from desim.ports import REQUEST, RESPONSE, Port, PortBinding
from desim.registry import Registry, default_registry
from desim.route import Route
from desim.workload import INTER_LAYER, SPLITS

if TYPE_CHECKING:
    import simpy

SETTINGS = {
    "name": Param(str, "desim_run", description="run name: reports go to OUTDIR/<name>/"),
    "word_bytes": Param(int, 1, "bytes", "bytes per operand element", minimum=1, maximum=256),
    "accumulator_bytes": Param(
        int, 0, "bytes", "bytes of a partial sum, wherever held or moved (0: word_bytes)", minimum=0, maximum=256
    ),
    "clock_mhz": Param(
        float, 1000.0, "MHz", "accelerator clock (trace time, bandwidth in GB/s)", minimum=1e-3, maximum=1e6
    ),
    "split": Param(
        str,
        "every",
        choices=SPLITS,
        description="with several compute units: each runs every layer, or a share of N or M",
    ),
    "inter_layer": Param(
        str,
        "cold",
        choices=INTER_LAYER,
        description="each layer starts from empty storage, or takes what a level still holds of its input",
    ),
}
"""A system's own settings, beside its components and links."""
for _key, _param in SETTINGS.items():
    _param.name = _key

_NODE_NAME = re.compile(r"[^\s.\x00-\x1f\x7f]+")
"""A component name: no dots (``node.port`` splits on them), no spaces or control characters."""


class System:
    """Components wired by links, as a networkx ``MultiDiGraph`` (edges keyed by ``src_port``).

    Args:
        graph: nodes with ``kind`` and ``params``; edges with ``src_port``, ``dst_port`` and
            optional link parameters (a ``DiGraph`` is taken too: it has one link per pair).
        name: the run name (reports go under a folder of this name).
        word_bytes: bytes per operand element (SCALE-Sim's word).
        accumulator_bytes: bytes of a partial sum (0: ``word_bytes``); outputs are written at
            ``word_bytes`` once their reduction is complete.
        clock_mhz: the accelerator's clock; only traces and reports in seconds use it.
        split: how the compute units share each layer (``every``, ``n`` or ``m``; see
            :func:`~desim.workload.split_layer`).
        inter_layer: ``cold`` (every layer starts from empty storage) or ``forward`` (a level
            that still holds a layer's output gives it to the next layer as its input; see
            :class:`~desim.workload.Chain`).
        source: the file the system came from, named in error messages.
        registry: where kinds are looked up; the installed components by default.
    """

    def __init__(
        self,
        graph: nx.DiGraph | nx.MultiDiGraph,
        *,
        name: str = "desim_run",
        word_bytes: int = 1,
        accumulator_bytes: int = 0,
        clock_mhz: float = 1000.0,
        split: str = "every",
        inter_layer: str = "cold",
        source: str | Path | None = None,
        registry: Registry | None = None,
    ) -> None:
        values = {}
        given = {
            "name": name,
            "word_bytes": word_bytes,
            "accumulator_bytes": accumulator_bytes,
            "clock_mhz": clock_mhz,
            "split": split,
            "inter_layer": inter_layer,
        }
        for key, value in given.items():
            try:
                values[key] = SETTINGS[key].coerce(value)
            except DesimError as error:
                raise error.located(file=source, key=key) from None
        problem = run_name_problem(values["name"])
        if problem:
            raise DesimError(f"{values['name']!r} {problem}", file=source, key="name")
        for node in graph:
            if not isinstance(node, str) or not _NODE_NAME.fullmatch(node):
                raise DesimError(
                    f"component name {node!r} must be text without dots, spaces or control characters",
                    file=source,
                    key=str(node),
                )
        self.graph = _sorted_copy(graph)
        self.name = values["name"]
        self.word_bytes = values["word_bytes"]
        self.accumulator_bytes = values["accumulator_bytes"] or self.word_bytes
        self.clock_mhz = values["clock_mhz"]
        self.split = values["split"]
        self.inter_layer = values["inter_layer"]
        self.source = str(source) if source is not None else None
        self.registry = registry if registry is not None else default_registry()

    @classmethod
    def build(
        cls,
        components: Mapping[str, Mapping[str, Any]],
        links: Iterable[Mapping[str, Any]],
        **kwargs: Any,
    ) -> System:
        """Build from plain data: ``{node: {"kind": ..., **params}}`` and links such as
        ``{"from": "array.ifmap", "to": "sram_ifmap.compute", "latency_cycles": 2}``.
        """
        graph = nx.MultiDiGraph()
        for node, spec in components.items():
            params = dict(spec)
            kind = params.pop("kind", None)
            if kind is None:
                raise DesimError("component has no 'kind'", key=node, file=kwargs.get("source"))
            graph.add_node(node, kind=kind, params=params)
        for index, spec in enumerate(links):
            attrs = dict(spec)
            src, src_port = _endpoint(attrs.pop("from", None), f"links[{index}].from")
            dst, dst_port = _endpoint(attrs.pop("to", None), f"links[{index}].to")
            for node, end in ((src, "from"), (dst, "to")):
                if node not in graph:
                    raise DesimError(
                        f"names node {node!r}, which is not a component (components: "
                        f"{', '.join(map(str, components)) or 'none'})",
                        key=f"links[{index}].{end}",
                        file=kwargs.get("source"),
                    )
            unknown = [str(name) for name in attrs if name not in LINK_PARAMS]
            if unknown:
                raise DesimError(
                    f"unknown link attribute(s) {', '.join(unknown)} (known: from, to, {', '.join(LINK_PARAMS)})",
                    key=f"links[{index}]",
                    file=kwargs.get("source"),
                )
            add_link(graph, src, src_port, dst, dst_port, key=f"links[{index}]", **attrs)
        return cls(graph, **kwargs)

    def with_param(self, node: str, param: str, value: Any) -> System:
        """A copy of this system with ``node``'s ``param`` set to ``value``; this one is left as it is."""
        graph = self.graph.copy()  # the new system copies every attribute; only the params dict must not be shared
        data = graph.nodes[node]
        data["params"] = {**data.get("params", {}), param: value}
        return System(
            graph,
            name=self.name,
            word_bytes=self.word_bytes,
            accumulator_bytes=self.accumulator_bytes,
            clock_mhz=self.clock_mhz,
            split=self.split,
            inter_layer=self.inter_layer,
            source=self.source,
            registry=self.registry,
        )

    def nodes_of(self, role: type[Component]) -> list[str]:
        """Names of the nodes whose kind is a subclass of ``role`` (unknown kinds are skipped)."""
        return [
            node
            for node, data in self.graph.nodes(data=True)
            if data.get("kind") in self.registry and issubclass(self.registry.get(data["kind"]), role)
        ]

    def main_memories(self) -> list[str]:
        """The memories where hierarchies end: those that pass nothing further down (no request port)."""
        return [
            node
            for node in self.nodes_of(Memory)
            if not any(port.role == REQUEST for port in self.kind_of(node).declared_ports.values())
        ]

    def kind_of(self, node: str) -> type[Component]:
        return self.registry.get(self.graph.nodes[node]["kind"])

    def params_of(self, node: str) -> dict[str, Any]:
        """The node's parameters as its component sees them: checked, with defaults filled in."""
        component = self.kind_of(node)(node, self.graph.nodes[node].get("params", {}))
        return {name: getattr(component, name) for name in component.declared_params}

    # -- validation ------------------------------------------------------------------------------

    def validate(self) -> dict[str, Component]:
        """Check the whole system before time starts; raise DesimError naming the node and port.

        Returns the checked (not yet elaborated) components by name.
        """
        return self._instantiate()[0]

    def _instantiate(self) -> tuple[dict[str, Component], dict[tuple[str, str, str], Link]]:
        try:
            components = self._components()
            links = self._links(components)
            self._bind_ports(components, links)
            # A component's own params before the compute units that rely on them.
            for component in sorted(components.values(), key=lambda c: isinstance(c, Compute)):
                component.check()
        except DesimError as error:
            raise error.located(file=self.source) from None
        return components, links

    def _components(self) -> dict[str, Component]:
        components: dict[str, Component] = {}
        for node, data in self.graph.nodes(data=True):
            if "kind" not in data:
                raise DesimError("a link names this node, but no component of that name exists", key=node)
            if not isinstance(data["kind"], str):
                raise DesimError(f"expected a kind name, got {data['kind']!r}", key=f"{node}.kind")
            try:
                cls = self.registry.get(data["kind"])
            except DesimError as error:
                raise DesimError(error.message, key=f"{node}.kind") from None
            components[node] = cls(node, data.get("params", {}))
            components[node].system = self
        return components

    def _links(self, components: dict[str, Component]) -> dict[tuple[str, str, str], Link]:
        links = {}
        for src, dst, key, attrs in self.graph.edges(keys=True, data=True):
            for node, port_name, role in ((src, attrs["src_port"], REQUEST), (dst, attrs["dst_port"], RESPONSE)):
                declared = components[node].declared_ports
                port = declared.get(port_name)
                if port is None:
                    raise DesimError(
                        f"kind {components[node].kind!r} has no port {port_name!r} "
                        f"(ports: {', '.join(declared) or 'none'})",
                        key=f"{node}.{port_name}",
                    )
                if port.role != role:
                    side = "starts" if role == REQUEST else "ends"
                    raise DesimError(
                        f"is a {port.role} port, but a link {side} there (links run from a "
                        f"request port to a response port)",
                        key=f"{node}.{port_name}",
                    )
            links[(src, dst, key)] = Link.from_attrs(src, dst, attrs)
        return links

    def _bind_ports(self, components: dict[str, Component], links: dict[tuple[str, str, str], Link]) -> None:
        # Request ports first, and their loops: a missing or wrong link from one is the mistake, a
        # memory's idle response port only its symptom.
        for role in (REQUEST, RESPONSE):
            for component in components.values():
                for port_name, port in component.declared_ports.items():
                    if port.role == role:
                        self._attach(components, links, component, port_name, port)
            if role == REQUEST:
                _refuse_loops(components)

    def _attach(
        self,
        components: dict[str, Component],
        links: dict[tuple[str, str, str], Link],
        component: Component,
        port_name: str,
        port: Port,
    ) -> None:
        """Check the links at one port; bind a request port to the route of each."""
        node = component.name
        if port.role == REQUEST:
            attached = [v for _, v, a in self.graph.out_edges(node, data=True) if a["src_port"] == port_name]
        else:
            attached = [u for u, _, a in self.graph.in_edges(node, data=True) if a["dst_port"] == port_name]
        key = f"{node}.{port_name}"
        if not attached:
            if port.required:
                target = f" to {port.peer_names()}" if port.role == REQUEST else ""
                raise DesimError(f"is not connected (it needs a link{target})", key=key)
            return
        if len(attached) > 1 and not port.multiple:
            raise DesimError(f"takes one link, but {len(attached)} attach: {', '.join(attached)}", key=key)
        if port.role == REQUEST:
            bindings = []
            for first in sorted(attached):
                nodes = self._path(components, node, port_name, first)
                on_the_way = [links[(node, first, port_name)]]
                for a, b in itertools.pairwise(nodes[1:]):  # through interconnects: their first link a -> b
                    on_the_way.append(links[(a, b, min(self.graph[a][b]))])
                bindings.append(PortBinding(peer=components[nodes[-1]], nodes=nodes, links=on_the_way))
            component.bind(port_name, bindings)

    def _path(self, components: dict[str, Component], src: str, port_name: str, first: str) -> list[str]:
        """The nodes from ``src`` through ``first`` to the one component of the port's peer class."""
        port = components[src].declared_ports[port_name]
        wanted = port.peer or Component
        key = f"{src}.{port_name}"
        if isinstance(components[first], wanted):
            return [src, first]
        if not isinstance(components[first], Interconnect):
            raise DesimError(
                f"links to {first!r} (kind {components[first].kind!r}), but needs {port.peer_names()}",
                key=key,
            )
        # Routes pass through interconnects, but end at one that is itself a peer (a crossbar).
        carriers = {n for n, c in components.items() if isinstance(c, Interconnect) and not isinstance(c, wanted)}
        view = nx.subgraph_view(self.graph, filter_edge=lambda a, b, _: a in carriers)
        reachable = nx.single_source_shortest_path(view, first)
        found = sorted(n for n in reachable if n != src and isinstance(components[n], wanted))
        if not found:
            raise DesimError(f"has no route to {port.peer_names()} (through {first!r})", key=key)
        if len(found) > 1:
            raise DesimError(
                f"reaches more than one {port.peer_names()} ({', '.join(found)}); a port is routed to exactly one",
                key=key,
            )
        return [src, *reachable[found[0]]]

    # -- elaboration -----------------------------------------------------------------------------

    def elaborate(self, env: simpy.Environment) -> dict[str, Component]:
        """Fresh, validated components on ``env``, by name, with every request port's route resolved."""
        components, links = self._instantiate()
        for link in links.values():
            link.elaborate(env)
        for component in components.values():
            component.elaborate(env, self)
        for component in components.values():
            for bindings in component.request_bindings().values():
                for binding in bindings:
                    binding.route = _route(env, binding, components)
        return components


def _refuse_loops(components: dict[str, Component]) -> None:
    """Raise DesimError if requests could go round in a loop (a level whose misses come back to it)."""
    asks = nx.DiGraph()
    for node, component in components.items():
        for port_name, bindings in component.request_bindings().items():
            for binding in bindings:
                asks.add_edge(node, binding.peer.name, port=port_name)
    try:
        cycle = nx.find_cycle(asks)
    except nx.NetworkXNoCycle:
        return
    src, dst = cycle[0][0], cycle[0][1]
    loop = " -> ".join([edge[0] for edge in cycle] + [src])
    raise DesimError(
        f"requests would go round in a loop ({loop}); every route must end at a memory that serves it",
        key=f"{src}.{asks.edges[src, dst]['port']}",
    )


def run_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a run's report folder (one path component), or None if it can."""
    if not name.strip():
        return "is empty"
    if name in (".", "..") or any(ch in name for ch in "/\\") or not name.replace(" ", "x").isprintable():
        return "must be a single folder name (no '/', '\\', control or line-breaking characters, '.' or '..')"
    if len(name.encode()) > 200:
        return "is too long for a folder name (at most 200 bytes)"
    return None


def _sorted_copy(graph: nx.DiGraph | nx.MultiDiGraph) -> nx.MultiDiGraph:
    """``graph`` as a multigraph keyed by request port, nodes and links in name order, attributes copied."""
    ordered = nx.MultiDiGraph()
    for node in sorted(graph):
        ordered.add_node(node, **copy.deepcopy(graph.nodes[node]))
    edges = sorted(graph.edges(data=True), key=lambda edge: (edge[0], str(edge[2].get("src_port")), edge[1]))
    for src, dst, attrs in edges:
        if "src_port" not in attrs or "dst_port" not in attrs:
            raise DesimError("a link must name the ports it joins (src_port, dst_port)", key=f"{src}->{dst}")
        if ordered.has_edge(src, dst, key=attrs["src_port"]):
            raise DesimError(f"takes one link, but two run to {dst!r}", key=f"{src}.{attrs['src_port']}")
        ordered.add_edge(src, dst, key=attrs["src_port"], **copy.deepcopy(attrs))
    return ordered


def add_link(
    graph: nx.MultiDiGraph, src: str, src_port: str, dst: str, dst_port: str, *, key: str = "", **attrs: Any
) -> None:
    """Add the link ``src.src_port -> dst.dst_port``; a request port takes one link."""
    if graph.has_edge(src, dst, key=src_port):
        raise DesimError(
            f"a second link from {src}.{src_port} to {dst!r}; a request port takes one link", key=key or None
        )
    graph.add_edge(src, dst, key=src_port, src_port=src_port, dst_port=dst_port, **attrs)


def _endpoint(text: Any, key: str) -> tuple[str, str]:
    if not isinstance(text, str) or text.count(".") != 1 or not all(text.split(".")):
        raise DesimError(f"expected 'node.port', got {text!r}", key=key)
    node, port = text.split(".")
    return node, port


def _route(env: simpy.Environment, binding: PortBinding, components: dict[str, Component]) -> Route:
    """Turn a node path into hops: link channels and interconnect hops, both ways.

    Ideal link channels (infinite bandwidth, no latency) would only pass transfers on, so they
    are left out of the hot path; interconnects always stay, since they count what crosses them.
    """
    nodes, links = binding.nodes, binding.links
    last = len(nodes) - 1
    to_peer, from_peer = [], []
    for i in range(last):
        if i > 0:
            to_peer.append(components[nodes[i]].hop(nodes[i - 1], nodes[i + 1]))
        _append_unless_ideal(to_peer, links[i].forward)
    for i in range(last, 0, -1):
        _append_unless_ideal(from_peer, links[i - 1].backward)
        if i - 1 > 0:
            from_peer.append(components[nodes[i - 1]].hop(nodes[i], nodes[i - 2]))
    return Route(env, nodes, binding.peer, tuple(to_peer), tuple(from_peer))


def _append_unless_ideal(hops: list, channel: Channel | None) -> None:
    if channel is not None and not channel.ideal:
        hops.append(channel)
