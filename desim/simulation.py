"""The simulation loop: elaborate a system on a SimPy environment and run a workload layer by layer.

Each layer starts with every component's :meth:`~desim.component.Component.begin_layer`, runs
until every compute unit's process has ended, and finishes with ``end_layer``; its stats come
back as one flat mapping scoped by node name (``array.total_cycles``). Layers run one after the
other on the same clock, each starting from empty buffers, as SCALE-Sim's do.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import simpy

from desim.component import Compute
from desim.errors import DesimError
from desim.system import System
from desim.workload import Layer


@dataclass(frozen=True)
class LayerResult:
    """One finished layer: its position in the workload, the layer, and its scoped stats."""

    index: int
    layer: Layer
    stats: dict[str, Any]


class Simulation:
    """Runs workloads on a system. Every :meth:`run` elaborates afresh: no state carries over."""

    def __init__(self, system: System) -> None:
        self.system = system

    def check(self, workload: Sequence[Layer]) -> None:
        """Raise DesimError, before time starts, if the system or any layer cannot run."""
        computes = [c for c in self.system.validate().values() if isinstance(c, Compute)]
        if not computes:
            raise DesimError("the system has no compute component to run layers on", file=self.system.source)
        for index, layer in enumerate(workload):
            for compute in computes:
                try:
                    compute.check_layer(layer)
                except DesimError as error:
                    raise DesimError(error.message, key=f"layer {index} ({layer.name}) on {compute.name}") from None

    def run(self, workload: Sequence[Layer]) -> Iterator[LayerResult]:
        """Check everything, then simulate each layer in turn, yielding its result as it finishes."""
        self.check(workload)
        env = simpy.Environment()
        components = list(self.system.elaborate(env).values())
        computes = [c for c in components if isinstance(c, Compute)]
        for index, layer in enumerate(workload):
            with _quiet_gc():
                for component in components:
                    component.begin_layer(layer)
                done = [compute.run_layer(layer) for compute in computes]
                env.run(until=done[0] if len(done) == 1 else simpy.AllOf(env, done))
                for component in components:
                    component.end_layer()
            stats = {
                f"{component.name}.{name}": value
                for component in components
                for name, value in component.stat_values().items()
            }
            yield LayerResult(index, layer, stats)


@contextmanager
def _quiet_gc() -> Iterator[None]:
    """Collect garbage less often while events churn: SimPy makes many short-lived objects."""
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
