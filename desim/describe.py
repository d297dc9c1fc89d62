"""A system at a glance: a text listing for the terminal and a drawing of its graph.

:func:`describe_system` lists the components (with every parameter, defaults filled in), the links
(ideal, or their bandwidth and latency) and the route each request port resolves to.
:func:`draw_system` draws the graph to a PNG, one column per role from compute to memory. Both
validate the system first, so what they show is what a run would simulate.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import simpy

from desim.channel import Channel
from desim.component import OTHER_ROLE, ROLES, Component, Compute, role_of
from desim.link import Link
from desim.plots import need_matplotlib, save_png
from desim.route import Route
from desim.system import System

ROLE_COLOURS = {
    "compute": "#f4a261",
    "buffer": "#8ecae6",
    "interconnect": "#b7e4a0",
    "memory": "#cdb4db",
    OTHER_ROLE: "#d9d9d9",
}
IDEAL_COLOUR, LIMITED_COLOUR, OUTLINE_COLOUR = "#555555", "#c0392b", "#333333"
NODE_POINTS, EDGE_POINTS = 9, 7
WIDTH = 120


def describe_system(system: System) -> str:
    """A deterministic text listing of ``system``: components, links, routes (with the hops on each
    that can take time, and their rates) and the stall-cause columns a run's reports will have.

    Raises:
        DesimError: the system does not validate.
    """
    # Validated and elaborated (on a clock that never runs): routes and ledger labels exist then.
    components = system.elaborate(simpy.Environment())
    links = [Link.from_attrs(src, dst, attrs) for src, dst, attrs in system.graph.edges(data=True)]
    lines = [
        f"system {system.name}: {len(components)} component{_plural(components)}, {len(links)} link{_plural(links)}",
        f"  word_bytes={system.word_bytes} accumulator_bytes={system.accumulator_bytes} "
        f"clock_mhz={system.clock_mhz:g} split={system.split} inter_layer={system.inter_layer}",
        "",
        "components:",
    ]
    rows = [(node, c.kind, role_of(type(c))) for node, c in components.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for node, kind, role in rows:
        head = f"  {node:<{widths[0]}}  {kind:<{widths[1]}}  {role:<{widths[2]}}  "
        params = " ".join(f"{key}={_value(value)}" for key, value in system.params_of(node).items())
        wrapped = textwrap.wrap(params, WIDTH - len(head), break_long_words=False, break_on_hyphens=False)
        lines.extend(
            (head if i == 0 else " " * len(head)) + text for i, text in enumerate(wrapped or ["(no parameters)"])
        )

    lines += ["", "links:"]
    ends = [f"{link.src}.{link.src_port} -> {link.dst}.{link.dst_port}" for link in links]
    width = max(map(len, ends), default=0)
    lines.extend(f"  {end:<{width}}  {_link_text(link)}" for end, link in zip(ends, links, strict=True))

    lines += ["", "routes:"]  # each with, below it, the hops a request on it may cross that can take time
    ports = [
        (node, port_name, binding)
        for node, component in components.items()
        for port_name, bindings in component.request_bindings().items()
        for binding in bindings or [None]
    ]
    width = max((len(f"{node}.{port}") for node, port, _ in ports), default=0)
    for node, port_name, binding in ports:
        path = " -> ".join(binding.nodes) if binding is not None else "(not connected)"
        lines.append(f"  {f'{node}.{port_name}':<{width}}  {path}")
        timed = _timed_hops(binding.route) if binding is not None else []
        if timed:
            lines.append(f"  {'':<{width}}    {'; '.join(timed)}")
    lines += ["", "stall columns:"]  # STALL_REPORT.csv's cause columns, per compute unit
    for node, component in components.items():
        if isinstance(component, Compute):
            causes = component.stall_causes() or ["(none: memory is ideal)"]
            rows: list[list[str]] = [[]]
            for cause in causes:  # wrapped between labels, never inside one
                if rows[-1] and len(", ".join([*rows[-1], cause])) > WIDTH - len(node) - 4:
                    rows.append([])
                rows[-1].append(cause)
            lines.extend(
                f"  {node if i == 0 else '':<{len(node)}}  {', '.join(row)}{',' if i < len(rows) - 1 else ''}"
                for i, row in enumerate(rows)
            )
    return "\n".join(lines)


def _timed_hops(route: Route) -> list[str]:
    """The channels a request on ``route`` may cross that can take time, with their rates: the hops'
    own, and those of the routes a forwarding hop (a storage level, a crossbar) sends requests down."""
    channels: list[Channel] = []
    routes, seen = [route], set()
    while routes:
        current = routes.pop(0)
        for hop in current.hops():
            if isinstance(hop, Channel):
                owned = [hop]
            elif isinstance(hop, Component):  # a memory serving the route itself: its channels, and below it
                owned = hop.channels()
                if id(hop) not in seen:
                    seen.add(id(hop))
                    routes.extend(b.route for bindings in hop.request_bindings().values() for b in bindings)
            else:
                owned = []
            channels.extend(channel for channel in owned if channel not in channels and not channel.ideal)
    texts = []
    for channel in channels:
        rate = [] if channel.infinite else [f"{_value(channel.bandwidth_bytes_per_cycle)} B/cycle"]
        delay = [f"{channel.latency_cycles} cycles"] if channel.latency_cycles else []
        texts.append(f"{channel.name}: {', '.join([*rate, *delay]) or 'variable service'}")
    return texts


def draw_system(system: System, path: str | Path) -> Path:
    """Draw ``system`` as a PNG at ``path`` (written atomically) and return the path.

    Columns by role, left to right compute -> buffer -> interconnect -> memory (storage levels,
    which pass requests further down, before main memories); nodes labelled
    with name and kind and coloured by role; non-ideal links labelled with bandwidth and latency.

    Raises:
        DesimError: the system does not validate, matplotlib is missing, or ``path`` cannot be written.
    """
    components = system.validate()
    need_matplotlib("drawings")
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch
    from matplotlib.textpath import TextPath

    def text_size(text: str, points: float) -> tuple[float, float]:
        """Width and height of ``text`` in inches, with a little padding."""
        width = max(TextPath((0, 0), line, size=points).get_extents().width for line in text.split("\n"))
        return width / 72 + 0.1, (text.count("\n") + 1) * points * 1.25 / 72 + 0.06

    # Positions are in inches (axes at equal aspect), so boxes and gaps are sized to their text.
    labels = {node: f"{node}\n({c.kind})" for node, c in components.items()}
    box_w = max(text_size(label, NODE_POINTS)[0] for label in labels.values()) + 0.2
    box_h = 0.55
    links = {
        (src, dst, key): Link.from_attrs(src, dst, attrs)
        for src, dst, key, attrs in system.graph.edges(keys=True, data=True)
    }
    edge_labels = {ends: _link_label(link) for ends, link in links.items() if not link.is_ideal()}
    label_w = max((text_size(text, EDGE_POINTS)[0] for text in edge_labels.values()), default=0.0)
    column_step, row_step = box_w + max(label_w + 0.5, 1.0), box_h + 0.45

    roles = {node: role_of(type(c)) for node, c in components.items()}
    # Memories that pass requests further down (storage levels) stand in a column before the others.
    main = set(system.main_memories())
    forwards = {node for node in components if roles[node] == "memory" and node not in main}
    place = {node: "level" if node in forwards else roles[node] for node in components}
    order = (*list(ROLES)[:-1], "level", list(ROLES)[-1], OTHER_ROLE)
    columns = {key: [node for node in components if place[node] == key] for key in order}
    columns = {key: nodes for key, nodes in columns.items() if nodes}
    tallest = max(map(len, columns.values()))
    # Each column spreads its nodes evenly over the tallest one's height, so two arrays line up
    # with the two groups of buffers they feed.
    positions = {
        node: (x * column_step, tallest * row_step * (0.5 - (y + 0.5) / len(column)))
        for x, column in enumerate(columns.values())
        for y, node in enumerate(column)
    }
    column_of = {node: x for x, column in enumerate(columns.values()) for node in column}

    width, height = (len(columns) - 1) * column_step + box_w, (tallest - 1) * row_step + box_h
    fig = Figure(figsize=(width + 0.6, height + 0.6))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(-box_w / 2 - 0.3, width - box_w / 2 + 0.3)
    ax.set_ylim(-height / 2 - 0.3, height / 2 + 0.3)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(system.name, fontsize=11, fontweight="bold")

    boxes, taken = {}, []
    for node, (x, y) in positions.items():
        boxes[node] = FancyBboxPatch(
            (x - box_w / 2, y - box_h / 2),
            box_w,
            box_h,
            boxstyle="round,pad=0,rounding_size=0.08",
            facecolor=ROLE_COLOURS[roles[node]],
            edgecolor=OUTLINE_COLOUR,
            zorder=2,
        )
        ax.add_patch(boxes[node])
        ax.text(x, y, labels[node], ha="center", va="center", fontsize=NODE_POINTS, linespacing=1.3, zorder=3)
        taken.append((x - box_w / 2, y - box_h / 2, x + box_w / 2, y + box_h / 2))

    for (src, dst, key), link in links.items():
        # A link within a column, or one skipping a column, bends around the boxes in between;
        # parallel links between one pair (one per port) fan out.
        parallel = sorted(system.graph[src][dst])
        bend = (0.0 if column_of[dst] - column_of[src] == 1 else 0.3) + 0.25 * (
            parallel.index(key) - (len(parallel) - 1) / 2
        )
        colour = IDEAL_COLOUR if link.is_ideal() else LIMITED_COLOUR
        ax.add_patch(
            FancyArrowPatch(
                positions[src],
                positions[dst],
                patchA=boxes[src],
                patchB=boxes[dst],
                connectionstyle=f"arc3,rad={bend}",
                arrowstyle="-|>",
                mutation_scale=12,
                shrinkA=1,
                shrinkB=1,
                color=colour,
                linewidth=1.0 if link.is_ideal() else 1.6,
                zorder=1,
                clip_on=False,
            )
        )
        if (src, dst, key) in edge_labels:
            text = edge_labels[(src, dst, key)]
            x, y = _label_spot(positions[src], positions[dst], bend, text_size(text, EDGE_POINTS), taken)
            ax.text(
                x,
                y,
                text,
                ha="center",
                va="center",
                fontsize=EDGE_POINTS,
                color=colour,
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.9},
                zorder=4,
            )

    shown = dict.fromkeys(roles[node] for column in columns.values() for node in column)
    handles: list[Any] = [Patch(facecolor=ROLE_COLOURS[role], edgecolor=OUTLINE_COLOUR, label=role) for role in shown]
    if edge_labels:
        handles.append(Line2D([], [], color=LIMITED_COLOUR, linewidth=1.6, label="limited link"))
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=len(handles),
        frameon=False,
        fontsize=NODE_POINTS,
    )
    return save_png(fig, Path(path), "drawing", dpi=120, bbox_inches="tight")


def _label_spot(
    start: tuple[float, float],
    end: tuple[float, float],
    bend: float,
    size: tuple[float, float],
    taken: list[tuple[float, float, float, float]],
) -> tuple[float, float]:
    """A point on the arc3 curve from ``start`` to ``end`` where a label of ``size`` covers nothing in ``taken``.

    Tries the middle first, then points further along either way; the chosen rectangle joins ``taken``.
    """
    (x1, y1), (x2, y2) = start, end
    # matplotlib's arc3 is a quadratic Bezier whose control point is offset by bend x the chord.
    cx, cy = (x1 + x2) / 2 + bend * (y2 - y1), (y1 + y2) / 2 - bend * (x2 - x1)
    spots = [
        ((1 - t) ** 2 * x1 + 2 * t * (1 - t) * cx + t**2 * x2, (1 - t) ** 2 * y1 + 2 * t * (1 - t) * cy + t**2 * y2)
        for t in (0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8)
    ]
    w, h = size
    for x, y in spots:
        rect = (x - w / 2, y - h / 2, x + w / 2, y + h / 2)
        if not any(rect[0] < r[2] and r[0] < rect[2] and rect[1] < r[3] and r[1] < rect[3] for r in taken):
            taken.append(rect)
            return x, y
    return spots[0]


def _link_text(link: Link) -> str:
    if link.is_ideal():
        return "ideal"
    return f"bw={_value(link.bandwidth_bytes_per_cycle)} B/cycle, latency={link.latency_cycles} cycles"


def _link_label(link: Link) -> str:
    """What a drawn link adds: its bandwidth if finite, its latency if any, one per line."""
    parts = []
    if not math.isinf(link.bandwidth_bytes_per_cycle):
        parts.append(f"{_value(link.bandwidth_bytes_per_cycle)} B/cycle")
    if link.latency_cycles:
        parts.append(f"{link.latency_cycles} cycles")
    return "\n".join(parts)


def _value(value: Any) -> str:
    """A parameter value as written in a config: ``inf``, ``64`` for ``64.0``, ``true``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, tuple):
        return f"[{', '.join(value)}]"
    return str(value)


def _plural(items: Any) -> str:
    return "" if len(items) == 1 else "s"
