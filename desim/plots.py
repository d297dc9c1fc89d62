"""Pictures of a finished run, drawn with matplotlib (an optional extra: ``pip install -e '.[plot]'``).

From a run's report folder:

- ``cycles_by_cause.png``: each layer's cycles, stacked: compute, then its stall causes
  (from ``SUMMARY.json``, so it needs no trace);
- ``dram_bandwidth.png``: each memory's bytes per cycle over time against its peak;
- ``occupancy_layer<N>.png``: each buffer's bytes held over one layer, against its capacity.

The last two read the run's timeline trace (see :mod:`desim.trace`): its memory ``bandwidth``
and buffer ``occupancy`` counters. Each file is written under a temporary name and renamed into
place.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desim.errors import DesimError
from desim.io.outputs import check_writable, write_atomically

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PLOT_FILES = ("cycles_by_cause.png", "dram_bandwidth.png", "occupancy_layer*.png")
"""The pictures :func:`plot_run` may write into a report folder."""
MAX_READ_BYTES = 1 << 30
"""The largest summary or trace (uncompressed) the plots read."""
TOP_CAUSES = 7
"""Stall causes drawn in their own colour; the rest are stacked together as "other stalls"."""
COMPUTE_COLOUR = "#4c72b0"
CAUSE_COLOURS = ("#dd8452", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#ccb974", "#64b5cd")
OTHER_COLOUR = "#8c8c8c"


_NUMBER = (int, float)
_CYCLES_BY_LABEL = {str: _NUMBER}
SUMMARY_SHAPE = {
    "run_name": str,
    "totals": {"total_cycles": _NUMBER, "stall_cycles": _NUMBER, "stall_causes": _CYCLES_BY_LABEL},
    "per_layer": [
        {"id": int, "name": str, "compute_cycles": _NUMBER, "stall_cycles": _NUMBER, "stall_causes": _CYCLES_BY_LABEL}
    ],
    "trace": (str, type(None)),
}
"""The parts of ``SUMMARY.json`` the plots read: ``{key: shape}`` a mapping with those keys,
``{str: shape}`` one with any text keys, ``[shape]`` a list, a type (or tuple of types) a value."""
TRACE_SHAPE = {
    "traceEvents": [dict],
    "otherData": {
        "clock_mhz": _NUMBER,
        "layers": [{"index": int, "name": str, "start_cycle": _NUMBER, "end_cycle": _NUMBER}],
        "components": {str: {"role": str, "params": dict}},
    },
}
"""The parts of a trace the plots read; its events are checked by ``EVENT_SHAPES``."""
EVENT_SHAPES = {
    ("M", "process_name"): {"pid": int, "args": {"name": str}},
    ("C", None): {"pid": int, "name": str, "ts": _NUMBER, "args": {str: _NUMBER}},
}
"""The fields the plots read of process names and counters, by ``(ph, name)``."""


def shape_problem(value: Any, shape: Any, where: str) -> str | None:
    """Where ``value`` first departs from ``shape`` (see ``SUMMARY_SHAPE``), or None if it fits."""
    if isinstance(shape, list):
        if not isinstance(value, list):
            return f"{where}: expected a list"
        return next((p for i, item in enumerate(value) if (p := shape_problem(item, shape[0], f"{where}[{i}]"))), None)
    if isinstance(shape, dict) and list(shape) == [str]:
        if not isinstance(value, dict):
            return f"{where}: expected an object"
        return next(
            (p for key, item in value.items() if (p := shape_problem(item, shape[str], f"{where}.{key}"))), None
        )
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return f"{where}: expected an object"
        for key, inner in shape.items():
            if key not in value:
                return f"{where}.{key}: missing" if where else f"{key}: missing"
            problem = shape_problem(value[key], inner, f"{where}.{key}" if where else key)
            if problem:
                return problem
        return None
    kinds = shape if isinstance(shape, tuple) else (shape,)
    if isinstance(value, bool) or not isinstance(value, kinds):
        names = " or ".join("null" if kind is type(None) else kind.__name__ for kind in kinds)
        return f"{where}: expected {names}"
    return None


def _read_json(path: Path, what: str, shape: Any) -> dict[str, Any]:
    """A JSON file desim wrote (gzipped if ``.gz``), checked against ``shape``."""
    try:
        if path.exists() and not path.is_file():
            raise DesimError(f"the {what} is not a regular file", file=path)
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as handle:
            data = json.loads(handle.read(MAX_READ_BYTES + 1).decode("utf-8-sig"))
    except FileNotFoundError:
        raise DesimError(f"the {what} is missing", file=path) from None
    except (OSError, ValueError, EOFError, RecursionError) as error:
        raise DesimError(f"cannot read the {what}: {str(error)[:200]}", file=path) from None
    problem = shape_problem(data, shape, "")
    if problem:
        raise DesimError(f"not a desim {what}: {problem}", file=path)
    return data


def read_summary(folder: Path) -> dict[str, Any]:
    """A run's ``SUMMARY.json``, with the fields the plots read checked."""
    if not (folder / "SUMMARY.json").exists():
        raise DesimError("no SUMMARY.json here; give the folder a run wrote its reports to", file=folder)
    return _read_json(folder / "SUMMARY.json", "summary", SUMMARY_SHAPE)


def read_trace(path: Path) -> dict[str, Any]:
    """A trace written by :class:`desim.trace.Trace` (gzipped or not), with the fields the plots read checked."""
    data = _read_json(path, "trace", TRACE_SHAPE)
    if data["otherData"]["clock_mhz"] <= 0:
        raise DesimError("not a desim trace: otherData.clock_mhz: expected a positive number", file=path)
    for index, event in enumerate(data["traceEvents"]):
        shape = EVENT_SHAPES.get((event.get("ph"), event.get("name") if event.get("ph") == "M" else None))
        problem = shape_problem(event, shape, f"traceEvents[{index}]") if shape else None
        if problem is None and event.get("ph") == "C" and not event["args"]:
            problem = f"traceEvents[{index}].args: expected a value"
        if problem:
            raise DesimError(f"not a desim trace: {problem}", file=path)
    missing = sorted(set(data["otherData"]["components"]) - set(_processes(data)))
    if missing:
        raise DesimError(f"not a desim trace: no process for component {missing[0]!r}", file=path)
    return data


def plot_run(folder: Path, *, trace: Path | None = None, layer: int | None = None) -> list[Path]:
    """Draw every plot the run's reports (and trace, if any) allow; return the files written.

    Args:
        folder: the run's report folder (with ``SUMMARY.json``).
        trace: the timeline trace; by default the one the summary names, if any.
        layer: the layer whose buffer occupancy to draw; by default the traced layer that
            stalled longest.
    """
    summary = read_summary(folder)
    if trace is None and summary["trace"]:
        trace = folder / summary["trace"]
    if trace is None and layer is not None:
        raise DesimError("--layer needs a timeline trace; run with --trace or --plot", file=folder)
    # Everything is read and checked before the first picture is drawn: a failure changes nothing.
    data = read_trace(trace) if trace is not None else None
    if data is not None:
        traced = {entry["index"]: entry for entry in data["otherData"]["layers"]}
        if layer is None and traced:
            stalls = {entry["id"]: entry["stall_cycles"] for entry in summary["per_layer"]}
            layer = max(traced, key=lambda index: (stalls.get(index, 0), -index))
        elif layer is not None and layer not in traced:
            known = ", ".join(map(str, traced)) or "none"
            raise DesimError(f"layer {layer} is not in the trace (traced layers: {known})", file=trace)
        roles = {info["role"] for info in data["otherData"]["components"].values()}
        for role in ("memory", *(("buffer",) if layer is not None else ())):
            if role not in roles:
                raise DesimError(f"the trace has no {role} component to draw", file=trace)
    targets = [folder / "cycles_by_cause.png"]
    if data is not None:
        targets += [
            folder / "dram_bandwidth.png",
            *([folder / f"occupancy_layer{layer}.png"] if layer is not None else []),
        ]
    for target in targets:
        check_writable(target, "plot")
    written = [plot_cycles_by_cause(summary, targets[0])]
    if data is not None:
        written.append(plot_bandwidth(data, targets[1]))
        if layer is not None:
            written.append(plot_occupancy(data, layer, targets[2]))
    return written


def plot_cycles_by_cause(summary: dict[str, Any], path: Path) -> Path:
    """Each layer's cycles as a stacked bar: compute, then the largest stall causes, then the rest."""
    layers = summary["per_layer"]
    totals = summary["totals"]["stall_causes"]
    causes = [cause for cause, cycles in sorted(totals.items(), key=lambda item: -item[1]) if cycles][:TOP_CAUSES]
    figure, axes = _figure(width=max(7.0, min(16.0, 0.28 * len(layers) + 3)), height=4.8)
    x = list(range(len(layers)))
    bottom = [0.0] * len(layers)
    series = [("compute", COMPUTE_COLOUR, [layer["compute_cycles"] for layer in layers])]
    series += [
        (cause, colour, [layer["stall_causes"].get(cause, 0) for layer in layers])
        for cause, colour in zip(causes, CAUSE_COLOURS, strict=False)
    ]
    other = [layer["stall_cycles"] - sum(layer["stall_causes"].get(c, 0) for c in causes) for layer in layers]
    if any(other):
        series.append(("other stalls", OTHER_COLOUR, other))
    for label, colour, values in series:
        axes.bar(x, values, bottom=bottom, color=colour, label=label, width=0.8)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axes.set_xticks(x)
    if len(layers) <= 30:
        axes.set_xticklabels([layer["name"] for layer in layers], rotation=45, ha="right", fontsize=8)
    else:
        axes.set_xticklabels([str(i) if i % 5 == 0 else "" for i in x], fontsize=8)
        axes.set_xlabel("layer index")
    axes.set_ylabel("cycles")
    # Zero-height segments on top of the tallest bar would pin the axis to it; leave headroom.
    axes.set_ylim(0, 1.06 * max(bottom, default=0) or 1)
    _thousands(axes)
    stall = summary["totals"]["stall_cycles"]
    total = summary["totals"]["total_cycles"]
    axes.set_title(
        f"Cycles per layer: compute and stall causes\n{summary['run_name']}, "
        f"{100 * stall / total if total else 0:.1f}% of {total:,} cycles stalled",
        fontsize=11,
    )
    axes.legend(fontsize=8, loc="upper right", framealpha=0.9)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    return save_png(figure, path)


def plot_bandwidth(trace: dict[str, Any], path: Path) -> Path:
    """Each memory's bytes per cycle over the traced layers, with its peak and the layer boundaries."""
    other = trace["otherData"]
    memories = [name for name, info in other["components"].items() if info["role"] == "memory"]
    if not memories:
        raise DesimError("the trace has no memory component to draw", file=path)
    processes = _processes(trace)
    mhz = other["clock_mhz"]
    figure, axes = _figure(width=10.0, height=4.6)
    for name, colour in zip(memories, (COMPUTE_COLOUR, *CAUSE_COLOURS), strict=False):
        times, values = _counter(trace, processes[name], "bandwidth")
        axes.step(times, values, where="post", color=colour, linewidth=1.2, label=f"{name} (window mean)")
        peak = _number(other["components"][name].get("peak_bytes_per_cycle"))
        if peak is not None and math.isfinite(peak):
            axes.axhline(peak, color=colour, linestyle="--", linewidth=1, label=f"{name} peak ({peak:g} B/cycle)")
    layers = other["layers"]
    if layers:
        axes.set_xlim(layers[0]["start_cycle"] / mhz, layers[-1]["end_cycle"] / mhz)
    _mark_layers(axes, layers, mhz)
    axes.set_xlabel(f"time (µs at {mhz:g} MHz; 1 µs = {mhz:g} cycles)")
    axes.set_ylabel("bytes per cycle")
    axes.set_ylim(bottom=0)
    axes.set_title("Memory bandwidth over time against its peak", pad=16)
    axes.legend(fontsize=8, loc="lower left", framealpha=0.9)
    axes.grid(alpha=0.3)
    return save_png(figure, path)


def plot_occupancy(trace: dict[str, Any], layer: int, path: Path) -> Path:
    """Each buffer's bytes held during one layer, one panel per buffer, against its capacity."""
    other = trace["otherData"]
    entry = next(e for e in other["layers"] if e["index"] == layer)
    buffers = [name for name, info in other["components"].items() if info["role"] == "buffer"]
    if not buffers:
        raise DesimError("the trace has no buffer component to draw", file=path)
    processes = _processes(trace)
    mhz = other["clock_mhz"]
    start, end = entry["start_cycle"] / mhz, entry["end_cycle"] / mhz
    figure, panels = _figure(width=10.0, height=1.9 * len(buffers) + 1.0, rows=len(buffers))
    for axes, name, colour in zip(panels, buffers, (COMPUTE_COLOUR, *CAUSE_COLOURS) * 4, strict=False):
        times, values = _counter(trace, processes[name], "occupancy", start, end)
        axes.fill_between(times, values, step="post", color=colour, alpha=0.35, linewidth=0)
        axes.step(times, values, where="post", color=colour, linewidth=1)
        capacity = _number(other["components"][name]["params"].get("capacity_bytes"))
        if capacity is not None:
            axes.axhline(capacity, color="black", linestyle="--", linewidth=1, label=f"capacity {capacity:,.0f} B")
            axes.set_ylim(0, capacity * 1.12)
            axes.legend(fontsize=8, loc="upper right", framealpha=0.9)
        axes.set_ylabel(f"{name}\nbytes", fontsize=9)
        _thousands(axes)
        axes.grid(alpha=0.3)
        axes.set_xlim(start, end)
    panels[-1].set_xlabel(f"time (µs at {mhz:g} MHz)")
    panels[0].set_title(f"Buffer occupancy during layer {layer} ({entry['name']})")
    return save_png(figure, path)


# -- reading counters --------------------------------------------------------------------------------


def _processes(trace: dict[str, Any]) -> dict[str, int]:
    """Process id by component name (process names read ``name (kind)``)."""
    names = {}
    for event in trace["traceEvents"]:
        if event.get("ph") == "M" and event.get("name") == "process_name":
            names[event["args"]["name"].split(" (")[0].removeprefix("link ")] = event["pid"]
    return names


def _counter(
    trace: dict[str, Any], pid: int, name: str, start: float = -math.inf, end: float = math.inf
) -> tuple[list[float], list[float]]:
    """A counter's (time in µs, value) steps, within ``[start, end]``, starting at ``start`` if finite."""
    times, values = [], []
    for event in trace["traceEvents"]:
        if event.get("ph") == "C" and event["pid"] == pid and event["name"] == name:
            ts = event["ts"]
            if ts > end:
                continue
            value = next(iter(event["args"].values()))
            if ts < start:
                times, values = [start], [value]  # the level the layer starts from
                continue
            times.append(ts)
            values.append(value)
    return times, values


def _mark_layers(axes: Axes, layers: Iterable[dict[str, Any]], mhz: float) -> None:
    layers = list(layers)
    for entry in layers:
        axes.axvline(entry["start_cycle"] / mhz, color="grey", linewidth=0.6, alpha=0.6)
    if len(layers) <= 12:
        for entry in layers:
            middle = (entry["start_cycle"] + entry["end_cycle"]) / 2 / mhz
            axes.annotate(
                entry["name"],
                (middle, 1.0),
                xycoords=("data", "axes fraction"),
                ha="center",
                va="bottom",
                fontsize=7,
                color="dimgrey",
            )


def _thousands(axes: Axes) -> None:
    """Plain tick labels with thousands separators (no ``1e6`` offset)."""
    from matplotlib.ticker import FuncFormatter

    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# -- figures --------------------------------------------------------------------------------------


def need_matplotlib(what: str = "plots") -> None:
    """Raise DesimError, naming the extra to install, if matplotlib is missing (checked before any work)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise DesimError(
            f"{what} need matplotlib: pip install matplotlib (in a checkout: pip install -e '.[plot]')"
        ) from None


def _figure(*, width: float, height: float, rows: int = 1) -> tuple[Figure, Any]:
    need_matplotlib()
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0] if rows > 1 else figure.subplots()
    return figure, axes


def save_png(figure: Figure, path: Path, what: str = "plot", **options: Any) -> Path:
    """Save ``figure`` as a PNG at ``path``, atomically (see :func:`desim.io.outputs.write_atomically`)."""
    return write_atomically(
        path, lambda file: figure.savefig(file, format="png", facecolor="white", **{"dpi": 110, **options}), what
    )
