"""The simulation loop: elaborate a system on a SimPy environment and run a workload layer by layer.

Each layer starts with every component's :meth:`~desim.component.Component.begin_layer`, runs
until every compute unit's process has ended, and finishes with ``end_layer``; its stats come
back as one flat mapping scoped by node name (``array.total_cycles``). Layers run one after the
other on the same clock, each starting from empty buffers as SCALE-Sim's do; with the system's
``inter_layer: forward``, each component is told its layer's :class:`~desim.workload.Chain`
(``component.chain``) before ``begin_layer``, and a level may hand one layer's outputs to the next.

Two things can watch a run without changing it: a :class:`~desim.trace.Trace` records the layers
it wants, and a progress callback is told, every ``PROGRESS_CYCLES`` simulated cycles, how far
the current layer has got. Neither costs anything when not given.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import simpy

from desim import limits
from desim.component import Compute
from desim.errors import DesimError, warn_once
from desim.params import show_number
from desim.system import System
from desim.workload import Chain, Layer, Share, split_layer

if TYPE_CHECKING:
    from desim.component import ProcessGenerator
    from desim.trace import Trace

PROGRESS_CYCLES = 1 << 16
"""Simulated cycles between two progress reports within a layer."""


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
        components = list(self.system.validate().values())
        computes = [c for c in components if isinstance(c, Compute)]
        if not computes:
            raise DesimError("the system has no compute component to run layers on", file=self.system.source)
        checked = set()
        for index, layer in enumerate(workload):
            if layer.shape in checked:  # layers of one shape (ResNet's repeated blocks) pass or fail alike
                continue
            checked.add(layer.shape)
            shares = dict(zip(computes, split_layer(layer, len(computes), self.system.split), strict=True))
            for component in components:
                share = shares.get(component, Share.whole(layer))
                if share.empty:
                    continue
                try:
                    component.check_layer(layer, share)
                except DesimError as error:
                    raise DesimError(
                        error.message, line=layer.line, key=f"layer {index} ({layer.name}) on {component.name}"
                    ) from None
        for component in components:
            component.check_workload(workload)
        if self.system.inter_layer == "forward" and not any(c.keeps_across_layers for c in components):
            warn_once(
                "inter_layer: forward has no effect here: no component of this system keeps data across layers "
                "(a global_buffer does)"
            )

    def run(
        self,
        workload: Sequence[Layer],
        *,
        trace: Trace | None = None,
        progress: Callable[[int, float], None] | None = None,
    ) -> Iterator[LayerResult]:
        """Check everything, then simulate each layer in turn, yielding its result as it finishes.

        Args:
            workload: the layers, in order.
            trace: records the layers it :meth:`~desim.trace.Trace.wants`.
            progress: called as ``progress(layer_index, fraction_done)`` while a layer runs.
        """
        self.check(workload)
        env = simpy.Environment()
        elaborated = self.system.elaborate(env)
        components = list(elaborated.values())
        computes = [c for c in components if isinstance(c, Compute)]
        if trace is not None:
            trace.attach(elaborated)
        for index, layer in enumerate(workload):
            traced = trace is not None and trace.wants(index)
            start = env.now
            with _quiet_gc():
                if traced:
                    trace.begin_layer(index, layer, env.now)
                chain = Chain.of(workload, index, self.system.inter_layer)
                for component in components:
                    component.chain = chain
                    component.begin_layer(layer)
                shares = split_layer(layer, len(computes), self.system.split)
                running = [(compute, share) for compute, share in zip(computes, shares, strict=True) if not share.empty]
                done = [compute.run_layer(layer, share) for compute, share in running]
                finished = done[0] if len(done) == 1 else simpy.AllOf(env, done)
                if progress is not None:
                    busy = [compute for compute, _ in running]
                    env.process(_report_progress(env, finished, busy, index, progress))
                env.run(until=finished)
                if env.now >= limits.MAX_CYCLES:  # past it, times in floats (ledger, trace) lose whole cycles
                    raise DesimError(
                        f"the run reached {env.now:,} cycles in this layer ({env.now - start:,} of its own); desim "
                        f"simulates runs of fewer than {show_number(limits.MAX_CYCLES)} cycles (is a bandwidth far "
                        "too low for this traffic?)",
                        line=layer.line,
                        key=f"layer {index} ({layer.name})",
                    )
                for component in components:
                    component.end_layer()
                if traced:
                    trace.end_layer(env.now)
            stats = {
                f"{component.name}.{name}": value
                for component in components
                for name, value in component.stat_values().items()
            }
            yield LayerResult(index, layer, stats)


def _report_progress(
    env: simpy.Environment,
    finished: simpy.Event,
    computes: list[Compute],
    index: int,
    progress: Callable[[int, float], None],
) -> ProcessGenerator:
    """Tell ``progress`` how far layer ``index`` has got, every ``PROGRESS_CYCLES``, until it ends."""
    while True:
        progress(index, min(compute.progress() for compute in computes))
        yield env.timeout(PROGRESS_CYCLES)
        if finished.triggered:
            return


@contextmanager
def _quiet_gc() -> Iterator[None]:
    """Collect garbage less often while events churn: SimPy makes many short-lived objects."""
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
