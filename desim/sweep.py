"""Parameter sweeps: run a whole workload once per value of one node's parameter.

A sweep is written ``NODE.PARAM=V1,V2,...`` (``dram.bandwidth_bytes_per_cycle=1,2,4,inf``). Each
value is parsed as the parameter's declared type (so ``inf`` works where the param allows it), and
each point runs on its own copy of the system with that value set (:meth:`System.with_param`):
the caller's system is never changed. Every point is checked before the first one runs. The
result is one :class:`SweepRow` per value: total and stall cycles of the compute unit,
main-memory bytes moved, and the stall-ledger label that cost the most.

Engine code: it knows roles (:class:`Compute`, :class:`Memory`) and stat names, never hardware.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from desim.component import Compute
from desim.errors import DesimError
from desim.io.reports import LEDGER_STAT, critical
from desim.simulation import Simulation
from desim.system import System
from desim.workload import Layer

VARY_FLAG = "--vary"
FORM = "NODE.PARAM=V1,V2,..."
NEEDED_STATS = ("total_cycles", "stall_cycles")
MEMORY_BYTE_STATS = ("read_bytes", "write_bytes")


@dataclass(frozen=True)
class Vary:
    """What to sweep: a node's parameter and the values to give it, as typed."""

    node: str
    param: str
    texts: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.node}.{self.param}"


@dataclass(frozen=True)
class SweepRow:
    """One point of a sweep: the value and the whole workload's totals at it."""

    text: str
    """The value as given on the command line (stripped)."""
    value: Any
    """The value as the parameter's type."""
    total_cycles: int
    """Sum over layers of the compute unit's ``total_cycles`` (with several, the one that finished last)."""
    stall_cycles: int
    """Sum over layers of that compute unit's ``stall_cycles``."""
    dram_bytes: int | None
    """Bytes read and written by the main memories (those at the ends of the hierarchy), summed;
    None if the system has none."""
    stall_causes: dict[str, int]
    """The stall ledger summed over layers (label -> cycles), in the compute unit's label order."""

    @property
    def stall_percent(self) -> float:
        return 100 * self.stall_cycles / self.total_cycles if self.total_cycles else 0.0

    @property
    def dominant_cause(self) -> str | None:
        """The ledger label with the most stall cycles (the first such, on a tie); None without stalls."""
        if not self.stall_causes:
            return None
        label = max(self.stall_causes, key=self.stall_causes.__getitem__)
        return label if self.stall_causes[label] > 0 else None

    @property
    def dominant_cause_percent(self) -> float:
        """The dominant cause's share of the stall cycles, in percent (0 without stalls)."""
        label = self.dominant_cause
        if label is None or not self.stall_cycles:
            return 0.0
        return 100 * self.stall_causes[label] / self.stall_cycles


def parse_vary(text: str) -> Vary:
    """``NODE.PARAM=V1,V2,...`` as a :class:`Vary`; DesimError (key ``--vary``) if malformed."""
    key, equals, values = text.partition("=")
    if not equals:
        raise DesimError(f"expected {FORM}, got {text!r} (no '=')", key=VARY_FLAG)
    node, dot, param = key.strip().rpartition(".")
    if not dot or not node or not param:
        raise DesimError(f"expected {FORM}, got {text!r} (name the parameter as NODE.PARAM)", key=VARY_FLAG)
    texts = tuple(value.strip() for value in values.split(","))
    if texts == ("",):
        raise DesimError(f"no values given for {node}.{param}; expected {FORM}", key=VARY_FLAG)
    if "" in texts:
        raise DesimError(f"empty value in {values.strip()!r} for {node}.{param}; expected {FORM}", key=VARY_FLAG)
    return Vary(node, param, texts)


def sweep_values(system: System, vary: Vary) -> list[Any]:
    """The values of ``vary`` as its parameter's type; DesimError naming the node or parameter if not."""
    data = system.graph.nodes.get(vary.node)
    if data is None or "kind" not in data:
        known = ", ".join(sorted(n for n, d in system.graph.nodes(data=True) if "kind" in d)) or "none"
        raise DesimError(f"no component named {vary.node!r} (components: {known})", key=VARY_FLAG)
    try:
        kind = system.kind_of(vary.node)
    except DesimError as error:
        raise DesimError(error.message, key=f"{vary.node}.kind", file=system.source) from None
    declared = kind.declared_params.get(vary.param)
    if declared is None:
        known = ", ".join(kind.declared_params) or "none"
        raise DesimError(f"unknown parameter for kind {kind.kind!r} (known: {known})", key=vary.key)
    values = []
    for text in vary.texts:
        try:
            values.append(declared.coerce(text))
        except DesimError as error:
            raise DesimError(error.message, key=vary.key) from None
    return values


def iter_sweep(
    system: System, workload: Sequence[Layer], vary: Vary, *, workload_source: str | None = None
) -> Iterator[SweepRow]:
    """Run ``workload`` once per value of ``vary``, yielding each point's row as it finishes.

    Everything is checked before this returns: the values, and the system and every layer at
    each value (an error names the value it arose at; ``workload_source``, the topology file,
    locates layer errors). ``system`` itself is left as it was.
    """
    values = sweep_values(system, vary)
    computes = system.nodes_of(Compute)
    if not computes:
        raise DesimError("the system has no compute unit to sum cycles of", file=system.source)
    for compute in computes:
        declared = system.kind_of(compute).declared_stats
        missing = [name for name in NEEDED_STATS if name not in declared]
        if missing:
            kind = system.kind_of(compute).kind
            raise DesimError(f"kind {kind!r} lacks the stats a sweep sums: {', '.join(missing)}", key=compute)
    memory_stats = [f"{node}.{stat}" for node in system.main_memories() for stat in MEMORY_BYTE_STATS]
    points = []
    for text, value in zip(vary.texts, values, strict=True):
        point = system.with_param(vary.node, vary.param, value)
        try:
            Simulation(point).check(workload)
        except DesimError as error:
            raise _at_point(error, vary, text, workload_source) from None
        points.append((text, value, point))
    return _run_points(workload, points, computes, memory_stats)


def _run_points(
    workload: Sequence[Layer],
    points: list[tuple[str, Any, System]],
    computes: list[str],
    memory_stats: list[str],
) -> Iterator[SweepRow]:
    for text, value, system in points:
        total = stalls = moved = 0
        causes: dict[str, int] = {}
        for result in Simulation(system).run(workload):
            stats = result.stats
            compute = critical(stats, computes)
            total += stats[f"{compute}.total_cycles"]
            stalls += stats[f"{compute}.stall_cycles"]
            moved += sum(stats[name] for name in memory_stats)
            for label, cycles in stats.get(f"{compute}.{LEDGER_STAT}", {}).items():
                causes[label] = causes.get(label, 0) + cycles
        yield SweepRow(text, value, total, stalls, int(moved) if memory_stats else None, causes)


def sweep(
    system: System, workload: Sequence[Layer], vary: Vary | str, *, workload_source: str | None = None
) -> list[SweepRow]:
    """Every point of the sweep (see :func:`iter_sweep`); ``vary`` may be given as its text."""
    if isinstance(vary, str):
        vary = parse_vary(vary)
    return list(iter_sweep(system, workload, vary, workload_source=workload_source))


def _at_point(error: DesimError, vary: Vary, text: str, workload_source: str | None) -> DesimError:
    """``error``, raised while checking the point ``vary.key=text``, saying so."""
    if error.key == vary.key:  # the swept value itself is wrong: it came from the command line
        return DesimError(error.message, key=f"{vary.key}={text}")
    return DesimError(
        f"{error.message} (at {vary.key}={text})",
        file=error.file if error.file is not None else workload_source,
        line=error.line,
        key=error.key,
    )
