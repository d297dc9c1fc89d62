"""Timeline traces: what every component did, when, as Chrome trace-event JSON for Perfetto.

A :class:`Trace` is handed to :meth:`desim.simulation.Simulation.run`. For each layer it is asked
to record, it sets ``component.trace`` on every component, which then reports what it does:
:meth:`Trace.slice` for work on a track of its own (a fold, a stall and its causes),
:meth:`Trace.span` for work that may overlap (requests in flight; the trace spreads them over
as many lanes as it needs), :meth:`Trace.counter` for a level (bytes held). Components check
``self.trace is not None`` first, so a run without a trace does no tracing work at all.

Channels need no help from their components: the trace watches every channel of the system
(links, buses, memory controllers) while a traced layer runs. Each transaction served becomes a
slice on the channel's lane (:meth:`~desim.channel.Channel.lane`), and at the layer's end the
trace adds counters: transactions waiting, bytes per cycle and share of time busy, each averaged
over windows of a round number of cycles.

In the file, a component is a process and each of its tracks a thread; time is the accelerator's
clock shown as microseconds (``clock_mhz`` cycles per microsecond, so at the default 1 GHz a cycle
is a nanosecond). Times are whole nanoseconds, and rounding never breaks the nesting of slices.
Events are written layer by layer, so memory holds one layer's events; the file is written under
a temporary name and renamed into place when the trace is closed, with every layer finished by
then (a run stopped early keeps the layers it finished).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import math
from collections.abc import Container, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from desim.channel import Channel, Transfer
from desim.component import OTHER_ROLE, ROLES, Component, Memory, role_of
from desim.errors import DesimError
from desim.io.outputs import AtomicFile, reason
from desim.io.reports import json_ready

if TYPE_CHECKING:
    from desim.workload import Layer

WINDOWS_PER_LAYER = 250
"""About how many windows a layer's channel counters are averaged over."""


class Trace:
    """Records chosen layers of a run and writes them as a trace-event JSON file (gzipped if ``.gz``).

    Args:
        path: where the trace goes; a name ending in ``.gz`` is gzipped.
        clock_mhz: the accelerator's clock, which turns cycles into trace time.
        layers: indices of the layers to record; None records every layer.
    """

    def __init__(self, path: str | Path, *, clock_mhz: float = 1000.0, layers: Container[int] | None = None) -> None:
        self.path = Path(path)
        self.ns_per_cycle = 1000.0 / clock_mhz
        self.clock_mhz = clock_mhz
        self.layers = layers
        self.events_written = 0
        self._pids: dict[str, int] = {}
        self._tids: dict[tuple[int, str], int] = {}
        self._lanes: dict[tuple[str, str], list[int]] = {}
        self._events: list[tuple] = []
        self._components: list[Component] = []
        self._channels: dict[Channel, str] = {}
        self._watches: list[_Watch] = []
        self._recorded: list[dict[str, Any]] = []
        self._described: dict[str, dict[str, Any]] = {}
        self._layer: dict[str, Any] | None = None
        self._target = AtomicFile(self.path, "trace")
        # No name and no time in the gzip header, so the same run gives the same bytes.
        stream = (
            gzip.GzipFile(filename="", mode="wb", compresslevel=5, fileobj=self._target.file, mtime=0)
            if self.path.suffix == ".gz"
            else self._target.file
        )
        self._file: TextIO | None = io.TextIOWrapper(stream, encoding="utf-8")
        self._file.write('{"displayTimeUnit":"ns","traceEvents":[\n')  # buffered: cannot fail yet
        self._separator = ""

    def __enter__(self) -> Trace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- set-up by the simulation ---------------------------------------------------------------

    def wants(self, index: int) -> bool:
        """Whether layer ``index`` is to be recorded."""
        return self.layers is None or index in self.layers

    def attach(self, components: Mapping[str, Component]) -> None:
        """Name a process for each component (by role, from compute to memory, then by name) and find
        every channel to watch."""
        roles = [*ROLES, OTHER_ROLE]
        self._components = sorted(components.values(), key=lambda c: (roles.index(role_of(type(c))), c.name))
        for component in self._components:
            self._process(component.name, f"{component.name} ({component.kind})")
            self._described[component.name] = {
                "kind": component.kind,
                "role": role_of(type(component)),
                "params": {name: getattr(component, name) for name in component.declared_params},
            }
            if isinstance(component, Memory):
                self._described[component.name]["peak_bytes_per_cycle"] = component.peak_bytes_per_cycle()
        # A component's own channels are drawn in its process; the rest (links) get one each.
        owners = {channel: component.name for component in self._components for channel in component.channels()}
        for component in self._components:
            for bindings in component.request_bindings().values():
                for binding in bindings:
                    for hop in binding.route.hops():
                        if isinstance(hop, Channel) and hop not in owners:
                            owners[hop] = hop.name
                            self._process(hop.name, f"link {hop.name}")
        self._channels = owners

    def begin_layer(self, index: int, layer: Layer, now: int) -> None:
        """Start recording layer ``index``: components get ``trace`` set, channels get watched."""
        self._layer = {"index": index, "name": layer.name, "start_cycle": int(now)}
        for component in self._components:
            component.trace = self
        self._watches = [_Watch(self, channel, owner) for channel, owner in self._channels.items()]

    def end_layer(self, now: int) -> None:
        """Stop recording the layer: add the channel counters and write the layer's events out."""
        assert self._layer is not None, "end_layer() without begin_layer()"
        for component in self._components:
            component.trace = None
        start = self._layer["start_cycle"]
        window = _round_window((now - start) / WINDOWS_PER_LAYER)
        for watch in self._watches:
            watch.detach()
            watch.counters(start, int(now), window)
        self._watches = []
        self._layer["end_cycle"] = int(now)
        self._recorded.append(self._layer)
        self._layer = None
        self._flush()

    def close(self) -> None:
        """Finish the file (with the layers recorded so far) and move it into place."""
        if self._file is None:
            return
        self._stop_watching()
        other = {
            "desim": "timeline trace",
            "clock_mhz": self.clock_mhz,
            "layers": self._recorded,
            "components": self._described,
        }
        file, self._file = self._file, None
        try:
            file.write("\n],\n" + '"otherData":' + json.dumps(json_ready(other)) + "}\n")
            file.close()
        except OSError as error:
            self._target.discard()
            raise DesimError(f"cannot write the trace: {reason(error)}", file=self.path) from None
        self._target.commit()

    def discard(self) -> None:
        """Stop recording and drop the file: whatever was at the trace's path stays as it was."""
        if self._file is None:
            return
        self._stop_watching()
        file, self._file = self._file, None
        with contextlib.suppress(OSError, ValueError):  # nothing of it is kept
            file.close()  # flushes into the temporary file, which goes next
        self._target.discard()

    def _stop_watching(self) -> None:
        for component in self._components:
            component.trace = None
        for watch in self._watches:
            watch.detach()

    # -- what components report -------------------------------------------------------------------

    def slice(self, owner: str, track: str, name: str, start: float, end: float, **args: Any) -> None:
        """Work on one of ``owner``'s tracks from ``start`` to ``end`` (cycles); slices on a track nest."""
        begin = self._ns(start)
        self._events.append(("X", self._tid(owner, track), begin, self._ns(end) - begin, name, args))

    def span(self, owner: str, track: str, name: str, start: float, end: float, **args: Any) -> None:
        """Work that may overlap other spans of ``track``: put on the first lane free at ``start``.

        Spans must be reported in the order they end.
        """
        begin, finish = self._ns(start), self._ns(end)
        lanes = self._lanes.setdefault((owner, track), [])
        for lane, free_at in enumerate(lanes):
            if free_at <= begin:
                lanes[lane] = finish
                break
        else:
            lane = len(lanes)
            lanes.append(finish)
        label = track if lane == 0 else f"{track} {lane + 1}"
        self._events.append(("X", self._tid(owner, label), begin, finish - begin, name, args))

    def counter(self, owner: str, name: str, time: float, value: float, unit: str) -> None:
        """``owner``'s level ``name`` is ``value`` (in ``unit``) from ``time`` (cycles) on."""
        self._events.append(("C", (self._pids[owner], 0), self._ns(time), 0, name, {unit: value}))

    # -- the file -------------------------------------------------------------------------------------

    def _ns(self, cycles: float) -> int:
        return round(cycles * self.ns_per_cycle)

    def _process(self, name: str, label: str) -> None:
        pid = len(self._pids) + 1
        self._pids[name] = pid
        self._write({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": label}})
        self._write({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "args": {"sort_index": pid}})

    def _tid(self, owner: str, track: str) -> tuple[int, int]:
        pid = self._pids[owner]
        tid = self._tids.get((pid, track))
        if tid is None:
            tid = self._tids[(pid, track)] = len(self._tids) + 1
            self._write({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": track}})
            self._write({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "args": {"sort_index": tid}})
        return pid, tid

    def _flush(self) -> None:
        """Write the layer's events, in time order, enclosing slices before the slices they enclose."""
        events, self._events = self._events, []
        events.sort(key=lambda event: (event[2], -event[3]))
        last_counter: dict[tuple[int, str], dict[str, Any]] = {}
        out = []
        for phase, (pid, tid), ts, dur, name, args in events:
            if phase == "X":
                out.append({"ph": "X", "pid": pid, "tid": tid, "ts": ts / 1000, "dur": dur / 1000, "name": name})
                if args:
                    out[-1]["args"] = args
            else:
                previous = last_counter.get((pid, name))
                if previous is not None and previous["ts"] == ts / 1000:
                    previous["args"] = args  # several changes within one nanosecond: the last holds
                    continue
                event = {"ph": "C", "pid": pid, "ts": ts / 1000, "name": name, "args": args}
                last_counter[(pid, name)] = event
                out.append(event)
        for event in out:
            self._write(event)

    def _write(self, event: dict[str, Any]) -> None:
        assert self._file is not None, "the trace is closed"
        try:
            self._file.write(self._separator + json.dumps(event, separators=(",", ":")))
        except OSError as error:
            raise DesimError(f"cannot write the trace: {reason(error)}", file=self.path) from None
        self._separator = ",\n"
        self.events_written += 1


class _Watch:
    """What one channel served during a traced layer: a slice per transaction, then counters.

    They go to ``owner``'s process; a channel named otherwise than its owner prefixes its tracks
    and counters with its name, so two channels of one component stay apart.
    """

    def __init__(self, trace: Trace, channel: Channel, owner: str) -> None:
        self.trace = trace
        self.channel = channel
        self.owner = owner
        self.prefix = "" if channel.name == owner else f"{channel.name} "
        self.arrived: list[float] = []
        self.started: list[float] = []
        self.finished: list[float] = []
        self.nbytes: list[int] = []
        channel.observers.append(self.observe)

    def detach(self) -> None:
        if self.observe in self.channel.observers:
            self.channel.observers.remove(self.observe)

    def observe(self, transfer: Transfer, start: float, finish: float) -> None:
        self.arrived.append(transfer.submitted_at)
        self.started.append(start)
        self.finished.append(finish)
        self.nbytes.append(transfer.nbytes)
        client = transfer.client
        tensor = getattr(getattr(transfer.owner, "tile", None), "tensor", None)
        direction = "write" if transfer.owner.is_write else "read"
        self.trace.slice(
            self.owner,
            self.prefix + self.channel.lane(transfer),
            f"{direction} {tensor or getattr(client, 'name', client)}",
            start,
            finish,
            bytes=transfer.nbytes,
            address=transfer.address,
            client=getattr(client, "name", str(client)),
            queued_cycles=round(start - transfer.submitted_at, 3),
        )

    def counters(self, start: int, end: int, window: int) -> None:
        """Queue depth (exact), bytes per cycle and busy share (per window) over ``[start, end)``."""
        trace, channel, owner, prefix = self.trace, self.channel, self.owner, self.prefix
        queue, bandwidth, utilisation = f"{prefix}queue", f"{prefix}bandwidth", f"{prefix}utilisation"
        if not channel.ideal:
            changes: dict[float, int] = {}
            for arrived, started in zip(self.arrived, self.started, strict=True):
                changes[arrived] = changes.get(arrived, 0) + 1
                changes[started] = changes.get(started, 0) - 1
            depth = 0
            trace.counter(owner, queue, start, 0, "depth")
            for time in sorted(changes):
                depth += changes[time]
                trace.counter(owner, queue, time, depth, "depth")
        if end <= start:
            return
        edges = np.append(np.arange(start, end, window, dtype=np.float64), float(end))
        started, finished = np.asarray(self.started), np.asarray(self.finished)
        moved = np.diff(_before(edges, started, finished, np.asarray(self.nbytes, dtype=np.float64)))
        busy = np.diff(_before(edges, started, finished, finished - started))
        lengths = np.diff(edges)
        finite = channel.takes_time
        for left, nbytes, busy_cycles, length in zip(edges[:-1], moved, busy, lengths, strict=True):
            trace.counter(owner, bandwidth, left, round(float(nbytes / length), 3), "B/cycle")
            if finite:
                trace.counter(owner, utilisation, left, round(float(100 * busy_cycles / length), 2), "%")
        trace.counter(owner, bandwidth, end, 0, "B/cycle")
        if finite:
            trace.counter(owner, utilisation, end, 0, "%")


def _before(edges: np.ndarray, starts: np.ndarray, finishes: np.ndarray, amounts: np.ndarray) -> np.ndarray:
    """How much of ``amounts`` had been moved before each edge, each spread evenly over its interval.

    Intervals are a server's, served one after the other: in order and not overlapping. An
    interval of no length moves its amount at its start.
    """
    if not len(starts):
        return np.zeros(len(edges))
    done = np.concatenate(([0.0], np.cumsum(amounts)))
    k = np.searchsorted(starts, edges, side="left") - 1  # the last interval started before the edge
    inside = k >= 0
    kk = np.where(inside, k, 0)
    length = finishes[kk] - starts[kk]
    share = np.where(length > 0, np.clip((edges - starts[kk]) / np.where(length > 0, length, 1), 0, 1), 1.0)
    return np.where(inside, done[kk] + amounts[kk] * share, 0.0)


def _round_window(cycles: float) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... cycles that is at least ``cycles``."""
    if cycles <= 1:
        return 1
    power = 10 ** math.floor(math.log10(cycles))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= cycles)
