"""Reports: SCALE-Sim's three CSVs, desim's STALL_REPORT.csv, every stat per layer, a JSON summary.

The CSVs keep SCALE-Sim 2's exact column names and order, ``", "`` separators and trailing
commas, so existing scripts keep working. ``LAYER_STATS.jsonl`` holds one JSON object per
layer with every component's stats, scoped by node name. Each layer's rows and line are
appended, one ``write`` each, as soon as the layer finishes: a run that is killed keeps every
finished layer. ``SUMMARY.json`` (totals, per-layer key figures, stat units) is written at the
end, atomically (a temporary file renamed into place). The writer creates its files new in the
folder it is given (a run's staging folder, see :mod:`desim.io.outputs`); it never replaces any.

Where the numbers come from: the compute component's stats (see ``COMPUTE_STATS``) give cycles,
utilisation and SRAM counts; the buffers' ``traffic`` (a stat the buffer role declares: per
operand, bytes read and written below and the cycles that traffic spans) gives the DRAM columns,
SCALE-Sim's name for the traffic below the array's buffers. Cycle
columns follow SCALE-Sim: ``Total Cycles`` is the index of the layer's last cycle (elapsed - 1).
Average bandwidths, SRAM and DRAM alike, are words moved over ``Total Cycles``: the layer's mean
demand.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import simpy

from desim import __version__
from desim.component import Buffer, Compute, Memory
from desim.errors import DesimError
from desim.io.outputs import SUMMARY, reason, uninterrupted, write_atomically
from desim.simulation import LayerResult
from desim.stats import Stat
from desim.system import System
from desim.workload import OPERANDS

COMPUTE_COLUMNS = (
    "LayerID",
    "Total Cycles",
    "Stall Cycles",
    "Overall Util %",
    "Mapping Efficiency %",
    "Compute Util %",
)
BANDWIDTH_COLUMNS = (
    "LayerID",
    "Avg IFMAP SRAM BW",
    "Avg FILTER SRAM BW",
    "Avg OFMAP SRAM BW",
    "Avg IFMAP DRAM BW",
    "Avg FILTER DRAM BW",
    "Avg OFMAP DRAM BW",
)
DETAILED_COLUMNS = (
    "LayerID",
    "SRAM IFMAP Start Cycle",
    "SRAM IFMAP Stop Cycle",
    "SRAM IFMAP Reads",
    "SRAM Filter Start Cycle",
    "SRAM Filter Stop Cycle",
    "SRAM Filter Reads",
    "SRAM OFMAP Start Cycle",
    "SRAM OFMAP Stop Cycle",
    "SRAM OFMAP Writes",
    "DRAM IFMAP Start Cycle",
    "DRAM IFMAP Stop Cycle",
    "DRAM IFMAP Reads",
    "DRAM Filter Start Cycle",
    "DRAM Filter Stop Cycle",
    "DRAM Filter Reads",
    "DRAM OFMAP Start Cycle",
    "DRAM OFMAP Stop Cycle",
    "DRAM OFMAP Writes",
)
ARRAY_REPORTS = ("COMPUTE_REPORT.csv", "BANDWIDTH_REPORT.csv", "DETAILED_ACCESS_REPORT.csv", "STALL_REPORT.csv")
"""The reports written per compute unit: in the report folder, or in ``<unit>/`` within it when there are several."""
REPORT_FILES = (*ARRAY_REPORTS, "LAYER_STATS.jsonl", SUMMARY)
"""Every file a run of one compute unit writes into its report folder (plots and the trace aside)."""
REPORT_PATTERNS = (*REPORT_FILES, *(f"*/{name}" for name in ARRAY_REPORTS))
"""Every file a run of any number of compute units may write there, as glob patterns."""
STALL_COLUMNS = ("LayerID", "Total Cycles", "Compute Cycles", "Stall Cycles")
"""Followed by one ``<OPERAND> Stall Cycles`` column per ``stall_<operand>_cycles`` stat, then, if the
compute component keeps a ledger (a ``stall_cause_cycles`` stat), one column per ledger label."""

COMPUTE_STATS = (
    "total_cycles",
    "compute_cycles",
    "stall_cycles",
    "overall_util_percent",
    "mapping_efficiency_percent",
    "compute_util_percent",
    "ifmap_sram_reads",
    "filter_sram_reads",
    "ofmap_sram_writes",
    "first_fold_cycle",
    "last_fold_cycle",
    "macs",
    "pes",
)
"""Stats a compute component declares to appear in the SCALE-Sim reports."""

_STALL_CAUSE = re.compile(r"stall_(\w+)_cycles$")
LEDGER_STAT = "stall_cause_cycles"
"""The compute stat holding the stall ledger: ``{label: cycles}`` over the labels its
``stall_causes()`` declares."""
MEMORY_STATS = tuple(name for name, value in vars(Memory).items() if isinstance(value, Stat))
"""The traffic figures every memory reports (the :class:`~desim.component.Memory` role declares
them), which the summary turns into traffic, busy share, queue depth and latency."""


def check_reportable(system: System) -> list[str]:
    """The compute units the reports describe, in name order; DesimError if there is none, or one lacks stats."""
    computes = system.nodes_of(Compute)
    if not computes:
        raise DesimError("the system has no compute unit to report on", file=system.source)
    for node in computes:
        kind = system.kind_of(node)
        missing = [name for name in COMPUTE_STATS if name not in kind.declared_stats]
        if missing:
            raise DesimError(f"kind {kind.kind!r} lacks the stats the reports need: {', '.join(missing)}", key=node)
    return computes


def critical(stats: dict[str, Any], arrays: list[str]) -> str:
    """The compute unit that finished a layer last (the first in name order, on a tie): the layer's length is its."""
    return max(arrays, key=lambda array: (stats[f"{array}.total_cycles"], -arrays.index(array)))


class ReportWriter:
    """Writes a run's reports, new, into the folder ``outdir`` as its layers finish. Use as a context manager.

    With one compute unit its four CSVs go in ``outdir``; with several, each unit's go in
    ``outdir/<unit>/``. ``trace`` is the trace's path as the summary should give it (relative to the
    report folder when it lies inside it).
    """

    def __init__(
        self,
        outdir: str | Path,
        system: System,
        *,
        inputs: dict[str, str] | None = None,
        trace: str | None = None,
    ) -> None:
        self.arrays = check_reportable(system)
        # Ledger labels depend on the routes, which exist once the system is elaborated.
        elaborated = system.elaborate(simpy.Environment())
        self.causes: dict[str, list[str]] = {}
        self.ledger: dict[str, list[str]] = {}
        for array in self.arrays:
            declared = system.kind_of(array).declared_stats
            self.causes[array] = [
                m.group(1) for name in declared if name != LEDGER_STAT and (m := _STALL_CAUSE.match(name))
            ]
            self.ledger[array] = elaborated[array].stall_causes() if LEDGER_STAT in declared else []
        self.memories = system.nodes_of(Memory)
        self.peaks = {node: elaborated[node].peak_bytes_per_cycle() for node in self.memories}
        buffers = set(system.nodes_of(Buffer))
        self.buffers = {  # the buffers each array's ports lead to
            array: sorted({dst for _, dst in system.graph.out_edges(array) if dst in buffers}) for array in self.arrays
        }
        self.word_bytes = system.word_bytes
        self.units = {
            f"{node}.{name}": stat.unit
            for node in system.graph
            for name, stat in system.kind_of(node).declared_stats.items()
        }
        self.system = system
        self.inputs = inputs or {}
        self.dir = Path(outdir)
        self.trace = trace
        self.layers: list[dict[str, Any]] = []
        """The run's figures per layer: the system's, and each unit's under ``arrays`` when there are several."""
        self._files: dict[tuple[str, str], int] = {}
        try:
            for array in self.arrays:
                folder = self.dir / array if len(self.arrays) > 1 else self.dir
                folder.mkdir(exist_ok=True)
                stall_columns = (
                    *STALL_COLUMNS,
                    *(f"{cause.upper()} Stall Cycles" for cause in self.causes[array]),
                    *self.ledger[array],
                )
                for name, columns in zip(
                    ARRAY_REPORTS, (COMPUTE_COLUMNS, BANDWIDTH_COLUMNS, DETAILED_COLUMNS, stall_columns), strict=True
                ):
                    self._files[(array, name)] = _open_report(folder / name, columns)
            self._files[("", "LAYER_STATS.jsonl")] = _open_report(self.dir / "LAYER_STATS.jsonl", None)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> ReportWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for fd in self._files.values():
            os.close(fd)
        self._files = {}

    def add(self, result: LayerResult) -> None:
        """Append the layer's row to each CSV (one write per row)."""
        s, i = result.stats, result.index
        rows = {}
        figures = {}
        for array in self.arrays:
            a = f"{array}."
            total = s[a + "total_cycles"]
            ledger = s.get(a + LEDGER_STAT, {})  # empty for an array that sat the layer out (no share of it)
            dram = {operand: self._dram(s, operand, self.buffers[array]) for operand in OPERANDS}
            sram_words = (s[a + "ifmap_sram_reads"], s[a + "filter_sram_reads"], s[a + "ofmap_sram_writes"])
            sram_window = (float(s[a + "first_fold_cycle"]), float(s[a + "last_fold_cycle"]))
            words = (*sram_words, *(d["words"] for d in dram.values()))
            rows[(array, "COMPUTE_REPORT.csv")] = (
                i,
                total,
                s[a + "stall_cycles"],
                s[a + "overall_util_percent"],
                s[a + "mapping_efficiency_percent"],
                s[a + "compute_util_percent"],
            )
            rows[(array, "BANDWIDTH_REPORT.csv")] = (i, *(w / total if total > 0 else 0.0 for w in words))
            rows[(array, "DETAILED_ACCESS_REPORT.csv")] = (
                i,
                *(value for words in sram_words for value in (*sram_window, words)),
                *(value for d in dram.values() for value in (float(d["start"]), float(d["stop"]), d["words"])),
            )
            rows[(array, "STALL_REPORT.csv")] = (
                i,
                total,
                s[a + "compute_cycles"],
                s[a + "stall_cycles"],
                *(s[f"{a}stall_{cause}_cycles"] for cause in self.causes[array]),
                *(ledger.get(label, 0) for label in self.ledger[array]),
            )
            figures[array] = {
                "total_cycles": total,
                "compute_cycles": s[a + "compute_cycles"],
                "stall_cycles": s[a + "stall_cycles"],
                "stalls": {cause: s[f"{a}stall_{cause}_cycles"] for cause in self.causes[array]},
                "stall_causes": {label: ledger.get(label, 0) for label in self.ledger[array]},
                "overall_util_percent": s[a + "overall_util_percent"],
                "macs": s[a + "macs"],
                "pes": s[a + "pes"],
                "dram_words": {operand: d["words"] for operand, d in dram.items()},
            }
        line = {"id": i, "name": result.layer.name, "stats": s}
        stats_line = (json.dumps(json_ready(line)) + "\n").encode()
        layer = {"id": i, "name": result.layer.name, **self._system_figures(s, figures)}
        layer["memory"] = {node: {name: s[f"{node}.{name}"] for name in MEMORY_STATS} for node in self.memories}
        if len(self.arrays) > 1:
            layer["arrays"] = figures
        with uninterrupted():  # a layer is in every file, or in none
            try:
                for key, row in rows.items():
                    os.write(self._files[key], _csv_line(row))
                os.write(self._files[("", "LAYER_STATS.jsonl")], stats_line)
            except OSError as error:
                raise DesimError(f"cannot append to the reports: {reason(error)}", file=self.dir) from None
            self.layers.append(layer)

    def _system_figures(self, stats: dict[str, Any], figures: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """A layer as a whole: the figures of the unit that finished last (so compute and stalls add
        up to its length), with the MACs, utilisation and traffic of every unit."""
        slowest = figures[critical(stats, self.arrays)]
        if len(figures) == 1:
            return dict(slowest)
        macs, pes = sum(f["macs"] for f in figures.values()), sum(f["pes"] for f in figures.values())
        total = slowest["total_cycles"]
        return {
            **slowest,
            "macs": macs,
            "pes": pes,
            "overall_util_percent": 100 * macs / (total * pes) if total > 0 else 0.0,
            "dram_words": {op: sum(f["dram_words"][op] for f in figures.values()) for op in OPERANDS},
        }

    def _dram(self, stats: dict[str, Any], operand: str, buffers: list[str]) -> dict[str, int]:
        """An operand's traffic below ``buffers`` (each buffer's ``traffic``): words, and the cycles it spans."""
        direction = "write_bytes" if operand == "ofmap" else "read_bytes"
        nbytes, starts, stops = 0, [], []
        for buffer in buffers:
            traffic = stats[f"{buffer}.traffic"].get(operand)
            if traffic and traffic[direction]:
                nbytes += traffic[direction]
                starts.append(traffic["first_cycle"])
                stops.append(traffic["last_cycle"])
        return {"words": nbytes // self.word_bytes, "start": min(starts, default=0), "stop": max(stops, default=0)}

    def _memory_totals(self, node: str) -> dict[str, float]:
        """A memory's activity over the run: bytes moved, busy share, mean and peak queue, mean latency."""
        per_layer = [layer["memory"][node] for layer in self.layers]
        elapsed = sum(layer["total_cycles"] + 1 for layer in self.layers)
        transactions = sum(m["transactions"] for m in per_layer)
        moved = {key: sum(m[key] for m in per_layer) for key in ("read_bytes", "write_bytes")}
        return {
            **moved,
            "avg_bytes_per_cycle": sum(moved.values()) / elapsed if elapsed else 0.0,
            "busy_percent": 100 * sum(m["busy_cycles"] for m in per_layer) / elapsed if elapsed else 0.0,
            "avg_queue_depth": sum(m["queue_wait_cycles"] for m in per_layer) / elapsed if elapsed else 0.0,
            "max_queue_depth": max((m["max_queue_depth"] for m in per_layer), default=0),
            "avg_latency_cycles": (
                sum(m["avg_latency_cycles"] * m["transactions"] for m in per_layer) / transactions
                if transactions
                else 0.0
            ),
            "transactions": transactions,
        }

    @staticmethod
    def _totals(layers: list[dict[str, Any]]) -> dict[str, Any]:
        """Cycles, stalls by operand and by cause, MACs and traffic, summed over ``layers``."""
        totals: dict[str, Any] = {
            key: sum(layer[key] for layer in layers)
            for key in ("total_cycles", "compute_cycles", "stall_cycles", "macs")
        }
        for key in ("stalls", "stall_causes", "dram_words"):
            labels = dict.fromkeys(label for layer in layers for label in layer[key])
            totals[key] = {label: sum(layer[key].get(label, 0) for layer in layers) for label in labels}
        return totals

    def summary(self) -> dict[str, Any]:
        """Per-layer results and run totals, as ``SUMMARY.json`` holds them.

        With several compute units, the run's figures are the system's (each layer as long as its
        slowest unit, whose stalls it shows), and ``arrays`` holds each unit's own totals.
        """
        layers = self.layers
        totals = self._totals(layers)
        totals["memory"] = {node: self._memory_totals(node) for node in self.memories}
        first = self.arrays[0]
        summary = {
            "desim_version": __version__,
            "run_name": self.system.name,
            "inputs": self.inputs,
            "compute": {"node": first, "kind": self.system.kind_of(first).kind, "params": self.system.params_of(first)},
            "memories": {node: self.system.params_of(node) for node in self.memories},
            "peak_bytes_per_cycle": self.peaks,
            "word_bytes": self.word_bytes,
            "accumulator_bytes": self.system.accumulator_bytes,
            "inter_layer": self.system.inter_layer,
            "clock_mhz": self.system.clock_mhz,
            "trace": self.trace,
            "stat_units": self.units,
            "layers": len(layers),
            "totals": totals,
            "per_layer": layers,
        }
        if len(self.arrays) > 1:
            summary["split"] = self.system.split
            summary["arrays"] = {
                array: {
                    "kind": self.system.kind_of(array).kind,
                    "params": self.system.params_of(array),
                    "reports": f"{array}/",
                    "totals": self._totals([layer["arrays"][array] for layer in layers]),
                }
                for array in self.arrays
            }
        return summary

    def write_summary(self) -> Path:
        """Write ``SUMMARY.json`` (atomically): :meth:`summary`."""
        text = json.dumps(json_ready(self.summary()), indent=1) + "\n"
        return write_atomically(self.dir / SUMMARY, lambda file: file.write(text.encode()), "summary")


def _open_report(path: Path, columns: tuple[str, ...] | None) -> int:
    """A new report opened for appending, with its CSV header (if ``columns``) written."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o666)
        if columns:
            os.write(fd, _csv_line(columns))
    except OSError as error:
        raise DesimError(f"cannot write the report: {reason(error)}", file=path) from None
    return fd


def _csv_line(values: tuple[Any, ...]) -> bytes:
    return (", ".join(str(v) for v in values) + ",\n").encode()


def json_ready(value: Any) -> Any:
    """``value`` with infinite floats spelled ``"inf"``, since JSON has no infinity."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_ready(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
