"""What a run shows on the terminal: a progress bar, a line per layer, and a closing table.

The bar (tqdm, on stderr) counts layers and shows how far the current one has got; it appears
only when stderr is a terminal and the run is not quiet, so logs and pipes stay clean. The table
sums the run up from its summary: cycles, where the stalls went, utilisation, memory traffic and
bandwidth, and the wall time.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from desim.workload import OPERANDS, Layer

TOP_CAUSES = 6
"""Stall causes the table lists by name; the rest are summed as "other"."""


def say(text: str = "") -> None:
    """Print a line on stdout. If its reader has gone (``desim run | head``), print nothing more.

    The run itself goes on to the end: its reports matter more than lines nobody reads.
    """
    try:
        click.echo(text)
    except BrokenPipeError:
        _silence_stdout()


def _silence_stdout() -> None:
    """Point stdout at the null device, so later prints (and Python's last flush) have nowhere to fail."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, sys.stdout.fileno())
    os.close(null)


class Progress:
    """A bar over layers with the current layer's share done; nothing at all unless shown on a terminal."""

    def __init__(self, layers: Sequence[Layer], *, quiet: bool) -> None:
        self.layers = layers
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm  # imported only when shown: it costs start-up time

            self.bar = tqdm(
                total=len(layers),
                unit="layer",
                leave=False,
                dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} layers [{elapsed}<{remaining}{postfix}]",
            )

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def callback(self) -> Callable[[int, float], None] | None:
        """What the simulation should report a layer's progress to: nothing when the bar is hidden."""
        return None if self.bar is None else self._within

    def _within(self, index: int, done: float) -> None:
        self.bar.set_postfix_str(f"{self.layers[index].name} {100 * done:.0f}%", refresh=False)
        self.bar.update(0)

    def finished(self, line: str | None) -> None:
        """A layer is done; print its line (if any) above the bar."""
        if self.bar is None:
            if line is not None:
                say(line)
            return
        if line is not None:
            try:
                self.bar.write(line)
            except BrokenPipeError:
                _silence_stdout()
        self.bar.update(1)


def layer_line(layer: dict[str, Any], util_percent: float) -> str:
    """One finished layer: cycles, stall cycles and share, utilisation."""
    total, stall = layer["total_cycles"], layer["stall_cycles"]
    return (
        f"layer {layer['id']:>3} {layer['name']:<16} {total:>11} cycles  "
        f"stall {stall:>10} ({share(stall, total)})  util {util_percent:6.2f}%"
    )


MOVED_KEYS = ("read_bytes", "write_bytes", "psum_write_bytes", "psum_read_bytes")
"""The counts of a compute unit's ``planned_traffic`` that are bytes moved (the rest describe them)."""


def mapping_lines(layer: dict[str, Any], stats: dict[str, Any], arrays: list[str]) -> list[str]:
    """Each compute unit's mapping of a finished layer (those that record one, as ``chosen_mapping``)."""
    lines = []
    for array in arrays:
        mapping = stats.get(f"{array}.chosen_mapping")
        if not mapping:
            continue
        fold = " x ".join(f"{dim} {size}" for dim, size in mapping["fold"].items())
        staged = ", ".join(
            f"{operand} resident"
            if level["resident"]
            else f"{operand} in tiles of " + " x ".join(f"{dim} {size}" for dim, size in level["tile"].items())
            for operand in OPERANDS[:2]
            if (level := mapping.get(operand))
        )
        traffic = stats.get(f"{array}.planned_traffic", {})
        moved = sum(counts.get(key, 0) for counts in traffic.values() for key in MOVED_KEYS)
        psums = traffic.get("ofmap", {})
        psum_bytes = psums.get("psum_write_bytes", 0) + psums.get("psum_read_bytes", 0)
        lines.append(
            f"    {layer['name']} on {array}: {mapping['mapper']}, order {mapping['order']}, "
            f"folds of {fold} ({mapping['folds']:,}); "
            f"{staged}, partial sums {mapping['ofmap']['psums']}; {_bytes(moved)} below the buffers, "
            f"{_bytes(psum_bytes)} of it partial sums"
        )
    return lines


def share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0.0%"


def summary_table(summary: dict[str, Any], wall_seconds: float) -> str:
    """The run in a dozen lines: cycles, stall share by cause, utilisation, memory traffic, wall time."""
    totals, layers = summary["totals"], summary["per_layer"]
    total, stall = totals["total_cycles"], totals["stall_cycles"]
    mhz = summary["clock_mhz"]
    rows: list[tuple[str, str, str]] = [
        ("total cycles", f"{total:,}", f"{_duration(total / mhz)} at {mhz:g} MHz"),
        ("compute cycles", f"{totals['compute_cycles']:,}", share(totals["compute_cycles"], total)),
        ("stall cycles", f"{stall:,}", share(stall, total)),
    ]
    causes = sorted(((c, n) for c, n in totals["stall_causes"].items() if n), key=lambda item: -item[1])
    for cause, cycles in causes[:TOP_CAUSES]:
        rows.append((f"  {cause}", f"{cycles:,}", share(cycles, total)))
    rest = sum(cycles for _, cycles in causes[TOP_CAUSES:])
    if rest:
        rows.append((f"  other ({len(causes) - TOP_CAUSES} causes)", f"{rest:,}", share(rest, total)))
    weighted = sum(layer["overall_util_percent"] * layer["total_cycles"] for layer in layers)
    rows.append(("utilisation", f"{weighted / total if total else 0.0:.1f}%", "MACs / (cycles x PEs), whole run"))
    for node, memory in totals["memory"].items():
        peak = summary["peak_bytes_per_cycle"][node]
        rate = memory["avg_bytes_per_cycle"]
        rows.append(
            (
                f"{node} traffic",
                _bytes(memory["read_bytes"] + memory["write_bytes"]),
                f"{_bytes(memory['read_bytes'])} read, {_bytes(memory['write_bytes'])} written",
            )
        )
        if math.isfinite(peak):
            against = f" of {peak:g} peak, busy {memory['busy_percent']:.1f}% of the time"
        else:
            against = " (no bandwidth limit)"
        rows.append((f"{node} bandwidth", f"{rate:.2f} B/cycle", f"{rate * mhz / 1000:.2f} GB/s{against}"))
    layers_run = summary["layers"]
    rows.append(("wall time", f"{wall_seconds:.2f} s", f"{layers_run} layer{'' if layers_run == 1 else 's'}"))
    left = max(len(row[0]) for row in rows)
    middle = max(len(row[1]) for row in rows)
    return "\n".join(f"{name:<{left}}  {value:>{middle}}  {note}".rstrip() for name, value, note in rows)


def _bytes(count: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.2f} {unit}"
    return f"{count:.0f} B"


def _duration(microseconds: float) -> str:
    if microseconds >= 1e6:
        return f"{microseconds / 1e6:.3f} s"
    if microseconds >= 1e3:
        return f"{microseconds / 1e3:.3f} ms"
    return f"{microseconds:.3f} µs"
