"""The component base class and the four roles the engine knows: compute, buffer, interconnect, memory.

A component declares, in its class body, its ``kind``, its params (:class:`~desim.params.Param`),
its ports (:class:`~desim.ports.Port`) and its stats (:class:`~desim.stats.Stat`). Those
declarations drive validation and ``desim components``. Nothing runs in a constructor: a component
is built, checked (:meth:`Component.check`), elaborated on a SimPy environment
(:meth:`Component.elaborate`), and then driven layer by layer.

The engine only distinguishes roles, never hardware:

- :class:`Compute` executes layers; a layer ends when every compute unit's process ends.
- :class:`Buffer` stages operands on chip for a compute unit, by the contract in :mod:`desim.staging`.
- :class:`Interconnect` carries transfers between its neighbours (transparent on routes).
- :class:`Memory` is where routes end and transfers are served.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from desim.errors import DesimError
from desim.params import Param
from desim.ports import REQUEST, Port, PortBinding
from desim.stats import Stat
from desim.workload import Chain, Layer, Share

if TYPE_CHECKING:
    import simpy

    from desim.channel import Channel, Hop
    from desim.staging import Staging, StagingPlan
    from desim.system import System
    from desim.trace import Trace

ProcessGenerator = Generator["simpy.Event", Any, None]
"""The type of a SimPy process body: a generator that yields events."""


class Component:
    """Base of every component. Subclasses declare ``kind``, params, ports and stats in their body."""

    kind: ClassVar[str] = ""
    declared_params: ClassVar[dict[str, Param]] = {}
    declared_ports: ClassVar[dict[str, Port]] = {}
    declared_stats: ClassVar[dict[str, Stat]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        params: dict[str, Param] = {}
        ports: dict[str, Port] = {}
        stats: dict[str, Stat] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Param):
                    params[name] = value
                elif isinstance(value, Port):
                    ports[name] = value
                elif isinstance(value, Stat):
                    stats[name] = value
        cls.declared_params, cls.declared_ports, cls.declared_stats = params, ports, stats

    def __init__(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        """Record the node's name and its parameter values, coerced and checked.

        Raises:
            DesimError: a parameter is unknown, missing or of the wrong type; the error's key
                is ``<name>.<param>``.
        """
        values = dict(params or {})
        for key in values:
            if key not in self.declared_params:
                known = ", ".join(self.declared_params) or "none"
                raise DesimError(f"unknown parameter for kind {self.kind!r} (known: {known})", key=f"{name}.{key}")
        for pname, param in self.declared_params.items():
            if pname in values:
                try:
                    value = param.coerce(values[pname])
                except DesimError as error:
                    raise DesimError(error.message, key=f"{name}.{pname}") from None
            elif param.required:
                raise DesimError(f"missing required parameter ({param.expected()})", key=f"{name}.{pname}")
            else:
                value = param.default
            self.__dict__[pname] = value
        self.name = name
        self._stat_values: dict[str, Any] = {s: stat.initial for s, stat in self.declared_stats.items()}
        self.env: simpy.Environment | None = None
        self.system: System | None = None
        self.layer_start = 0
        self.trace: Trace | None = None
        """Set by the simulation while a layer is being traced; report activity to it when set."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    # -- lifecycle -------------------------------------------------------------------------------

    def bind(self, port: str, bindings: list[PortBinding]) -> None:
        """Attach what a request port leads to; called by the system before :meth:`check`.

        A port of one link gets its binding as the attribute of its name; one of ``multiple``
        links gets the tuple of them, in the order of the nodes they lead to.
        """
        self.__dict__[port] = tuple(bindings) if self.declared_ports[port].multiple else bindings[0]

    def request_bindings(self) -> dict[str, list[PortBinding]]:
        """Each request port's bindings by port name (empty where the port is not connected)."""
        bindings = {}
        for name, port in self.declared_ports.items():
            if port.role == REQUEST:
                bound = self.__dict__.get(name)
                bindings[name] = [] if bound is None else list(bound) if port.multiple else [bound]
        return bindings

    def check(self) -> None:
        """Validate what needs the bound ports and ``self.system`` (operands match, sizes fit).

        Raise DesimError naming the node and the offending param or port.
        """

    def check_layer(self, layer: Layer, share: Share) -> None:
        """Raise DesimError if this component cannot take part in ``layer`` (a compute unit: run
        ``share`` of it; anything else is given the whole layer). Called for every layer shape
        before time starts, so that no run stops halfway."""

    def check_workload(self, layers: Sequence[Layer]) -> None:
        """Raise DesimError if this component cannot run ``layers`` as a whole (names it is given
        that no layer has, say). Called once, after every layer passed :meth:`check_layer`."""

    def elaborate(self, env: simpy.Environment, system: System) -> None:
        """Create processes and resources on ``env``. Called once, before time starts."""
        self.env = env
        self.system = system

    chain: Chain = Chain()
    """How the current layer's data meets its neighbours' (set before each ``begin_layer``)."""
    keeps_across_layers: ClassVar[bool] = False
    """Whether it can hand a layer's outputs to the next layer (``inter_layer: forward``)."""

    def begin_layer(self, layer: Layer) -> None:
        """Reset per-layer state and stats. Called on every component before the layer starts."""
        assert self.env is not None, "elaborate() must run before begin_layer()"
        self.layer_start = int(self.env.now)
        for name, stat in self.declared_stats.items():
            self._stat_values[name] = copy.copy(stat.initial)

    def end_layer(self) -> None:
        """Finalise this layer's stats (copy counters, compute ratios)."""

    def stall_causes(self) -> list[str]:
        """The stall-ledger labels waits on this component can be charged to (after elaboration).

        By default, the labels of everything its request ports lead to, so a component that
        forwards requests declares what lies below it; one that adds causes of its own lists
        them before ``super().stall_causes()``.
        """
        routes = [binding.route for bindings in self.request_bindings().values() for binding in bindings]
        return list(dict.fromkeys(label for route in routes if route is not None for label in route.stall_causes()))

    def channels(self) -> list[Channel]:
        """The channels this component serves transfers with (a trace watches them)."""
        return []

    def stat_values(self) -> dict[str, Any]:
        """This layer's stats by name."""
        return dict(self._stat_values)

    # -- introspection ---------------------------------------------------------------------------

    @classmethod
    def describe(cls) -> str:
        """A human-readable listing of the kind: its role, its whole docstring, its params, ports and stats."""
        doc = inspect.cleandoc(cls.__doc__ or "").splitlines()
        lines = [f"{cls.kind}  ({cls.__module__}.{cls.__qualname__}), role: {role_of(cls)}"]
        lines.extend(f"  {line}".rstrip() for line in doc)
        for title, items in (
            ("params", cls.declared_params),
            ("ports", cls.declared_ports),
            ("stats", cls.declared_stats),
        ):
            lines.append(f"  {title}:")
            lines.extend(f"    {item.describe()}" for item in items.values())
            if not items:
                lines.append("    (none)")
        return "\n".join(lines)


class Compute(Component):
    """A unit that executes layers: the simulation runs a layer until every compute unit is done.

    With several units, each runs its :class:`~desim.workload.Share` of a layer, as the system's
    ``split`` decides (all of it, by default).
    """

    def run_layer(self, layer: Layer, share: Share) -> simpy.Event:
        """Start executing ``share`` of ``layer`` and return the event that fires when it is done."""
        raise NotImplementedError

    def progress(self) -> float:
        """How much of the current layer is done, from 0 to 1 (for progress bars)."""
        return 0.0


class Buffer(Component):
    """On-chip storage that stages a compute unit's operands (one, several or all) between memory and compute.

    The compute unit hands it a plan per operand (:meth:`stage`) and talks to what comes back
    (:class:`~desim.staging.Staging`). Every buffer reports its traffic below it per operand in
    the ``traffic`` stat, which the reports read.
    """

    capacity_bytes: int
    traffic = Stat(
        "bytes",
        "per operand: bytes read and written below, first and last cycle of that traffic from layer start",
        initial={},
    )

    def holds(self) -> tuple[str, ...]:
        """The operands this buffer may stage (empty: any the compute units route to it)."""
        return ()

    def stage(self, operand: str, plan: StagingPlan) -> Staging:
        """Serve ``operand`` of the current layer by ``plan``; called once per operand per layer."""
        raise NotImplementedError


class Interconnect(Component):
    """A component that carries transfers between its neighbours; routes pass through it."""

    def hop(self, came_from: str, going_to: str) -> Hop:
        """The channel that carries traffic entering from node ``came_from`` towards ``going_to``."""
        raise NotImplementedError


class Memory(Component):
    """Where routes end: serves read and write transfers, split into its transactions.

    A memory may serve a transfer itself (a DRAM) or by issuing requests of its own further
    down (a storage level fetching what it does not hold): see :class:`~desim.channel.Nested`.

    Every memory reports the same traffic figures, which the reports read: it counts the bytes
    its clients read and wrote (``read_bytes``, ``write_bytes``), and the engine fills the rest
    from the channels it lists in :meth:`channels` when a layer ends. :meth:`peak_bytes_per_cycle`
    says how fast it can go, for the reports to compare its traffic with.
    """

    transaction_bytes: int

    read_bytes = Stat("bytes", "bytes its clients read")
    write_bytes = Stat("bytes", "bytes its clients wrote")
    transactions = Stat("transactions", "transactions its channels served")
    busy_cycles = Stat("cycles", "cycles its channels spent moving data")
    queue_wait_cycles = Stat("cycles", "cycles transactions spent queued at its channels, summed over transactions")
    max_queue_depth = Stat("transactions", "most transactions queued at one of its channels at once")
    avg_latency_cycles = Stat("cycles", "mean time from a transaction's arrival at its channels to its data out")

    def peak_bytes_per_cycle(self) -> float:
        """The most bytes per cycle it can move (inf: no limit); by default its channels' together."""
        return sum(channel.bandwidth_bytes_per_cycle for channel in self.channels()) or math.inf

    def begin_layer(self, layer: Layer) -> None:
        super().begin_layer(layer)
        for channel in self.channels():
            channel.reset_counters()

    def end_layer(self) -> None:
        """Fill the traffic figures its channels keep (a subclass that overrides this calls it)."""
        channels = self.channels()
        self.transactions = sum(channel.transfers for channel in channels)
        self.busy_cycles = sum(channel.busy_cycles for channel in channels)
        self.queue_wait_cycles = sum(channel.wait_cycles for channel in channels)
        self.max_queue_depth = max((channel.max_queue for channel in channels), default=0)
        timed = [channel for channel in channels if not channel.ideal]
        served = sum(channel.transfers for channel in timed)
        if served:
            self.avg_latency_cycles = sum(channel.transit_cycles for channel in timed) / served

    def hop(self) -> Hop:
        """The server that accepts this memory's transactions."""
        raise NotImplementedError

    def read_hops(self) -> tuple[Hop, ...]:
        """What a read's transactions pass through here, in order, before they travel back."""
        return (self.hop(),)

    def write_hops(self) -> tuple[Hop, ...]:
        """What a write's transactions pass through here, in order, once they have arrived."""
        return (self.hop(),)


ROLES: dict[str, type[Component]] = {
    "compute": Compute,
    "buffer": Buffer,
    "interconnect": Interconnect,
    "memory": Memory,
}
"""The roles the engine knows, in the order data flows from the arrays out to memory."""
OTHER_ROLE = "other"


def role_of(kind: type[Component]) -> str:
    """The role a component kind plays: ``compute``, ``buffer``, ``interconnect``, ``memory`` or ``other``."""
    return next((name for name, cls in ROLES.items() if issubclass(kind, cls)), OTHER_ROLE)
