"""The ``desim`` command: run a simulation, sweep a parameter, plot a run, describe a system, list kinds.

Mistakes in the user's input print one line (``desim: error: file:line: key: what was wrong``)
and exit with status 2, without a traceback.
"""

from __future__ import annotations

import functools
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from desim import __version__
from desim.console import Progress, layer_line, share, summary_table
from desim.describe import describe_system, draw_system
from desim.errors import DesimError, DesimWarning
from desim.io.arch_yaml import read_arch_yaml
from desim.io.reports import ReportWriter
from desim.io.scalesim_cfg import read_scalesim_cfg
from desim.io.topology import FORMATS, read_topology
from desim.plots import plot_run
from desim.registry import default_registry
from desim.simulation import Simulation
from desim.sweep import iter_sweep, parse_vary
from desim.system import System
from desim.trace import Trace
from desim.workload import Layer, select_layers

DEFAULT_CONFIG = "configs/scale.cfg"
DEFAULT_TOPOLOGY = "topologies/conv/alexnet.csv"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn DesimError into one line on stderr and exit status 2; show DesimWarnings plainly."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("always", DesimWarning)
            warnings.showwarning = _show_warning
            try:
                return command(*args, **kwargs)
            except DesimError as error:
                click.echo(f"desim: error: {error}", err=True)
                sys.exit(2)

    return wrapper


def _show_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    click.echo(f"desim: warning: {message}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="desim")
def main() -> None:
    """desim: a discrete-event simulator of DNN accelerators (SCALE-Sim compatible)."""


_SYSTEM_OPTIONS = (
    click.option("-c", "--config", help=f"SCALE-Sim .cfg file (default: {DEFAULT_CONFIG})."),
    click.option("-a", "--arch", help="native YAML architecture file (instead of -c)."),
)


def _input_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that name a run's inputs, shared by ``run`` and ``sweep``: -c, -a, -t, -i."""
    for option in reversed(
        (
            *_SYSTEM_OPTIONS,
            click.option("-t", "--topology", help=f"topology CSV (default: the config's, else {DEFAULT_TOPOLOGY})."),
            click.option(
                "-i",
                "--input-type",
                "input_type",
                type=click.Choice(FORMATS),
                default="conv",
                show_default=True,
                help="topology rows are conv layers or GEMMs (M, N, K).",
            ),
        )
    ):
        command = option(command)
    return command


@dataclass(frozen=True)
class _Inputs:
    system: System
    layers: list[Layer]
    architecture: str
    topology: str


def _read_system(config: str | None, arch: str | None) -> tuple[System, str, str | None]:
    """The system -c/-a name (default config filled in), the file it came from, and the config's topology."""
    if config and arch:
        raise DesimError("give a SCALE-Sim config (-c) or a YAML architecture (-a), not both")
    if arch:
        return read_arch_yaml(arch), arch, None
    config = config or _default_file(DEFAULT_CONFIG, "-c")
    cfg = read_scalesim_cfg(config)
    return cfg.system(), config, _beside(cfg.topology, config) if cfg.topology else None


def _read_inputs(config: str | None, arch: str | None, topology: str | None, input_type: str) -> _Inputs:
    """The system and the layers the -c/-a/-t/-i options name, defaults filled in."""
    system, source, configured_topology = _read_system(config, arch)
    topology = topology or configured_topology or _default_file(DEFAULT_TOPOLOGY, "-t")
    return _Inputs(system, read_topology(topology, input_type), str(source), str(topology))


@main.command()
@_input_options
@click.option("-p", "--outdir", default="outputs", show_default=True, help="reports go to OUTDIR/<run_name>/.")
@click.option(
    "--trace",
    "trace_file",
    metavar="FILE",
    help="write a timeline trace to FILE (Chrome trace-event JSON, gzipped if FILE ends in .gz) for Perfetto.",
)
@click.option(
    "--trace-layers",
    metavar="LAYERS",
    help="trace only these layers: indices, ranges and names, comma-separated (e.g. 0,3-5,conv1).",
)
@click.option(
    "--plot",
    is_flag=True,
    help="draw PNG plots into the report folder (needs matplotlib); traces to trace.json.gz there unless --trace.",
)
@click.option("-q", "--quiet", is_flag=True, help="no progress bar and no line per layer; just the closing table.")
@_user_errors
def run(
    config: str | None,
    arch: str | None,
    topology: str | None,
    outdir: str,
    input_type: str,
    trace_file: str | None,
    trace_layers: str | None,
    plot: bool,
    quiet: bool,
) -> None:
    """Simulate a topology on an architecture and write the reports."""
    inputs = _read_inputs(config, arch, topology, input_type)
    system, layers, topology = inputs.system, inputs.layers, inputs.topology
    simulation = Simulation(system)
    try:
        simulation.check(layers)
    except DesimError as error:
        raise error.located(file=topology) from None
    traced = None
    if trace_layers is not None:
        if not (trace_file or plot):
            raise DesimError("--trace-layers chooses what --trace or --plot records; give one of them")
        traced = select_layers(trace_layers, layers, key="--trace-layers")
    if plot:
        _need_matplotlib()
    destination = Path(outdir) / system.name
    trace_path = Path(trace_file) if trace_file else destination / "trace.json.gz" if plot else None
    started = time.perf_counter()
    described = {"architecture": inputs.architecture, "topology": topology, "input_type": input_type}
    with ReportWriter(destination, system, inputs=described, trace=trace_path) as reports:
        trace = Trace(trace_path, clock_mhz=system.clock_mhz, layers=traced) if trace_path else None
        try:
            with Progress(layers, quiet=quiet) as progress:
                for result in simulation.run(layers, trace=trace, progress=progress.callback()):
                    reports.add(result)
                    util = result.stats[f"{reports.array}.overall_util_percent"]
                    progress.finished(None if quiet else layer_line(reports.layers[-1], util))
        finally:
            if trace is not None:
                trace.close()
        reports.write_summary()
    click.echo(summary_table(reports.summary(), time.perf_counter() - started))
    click.echo(f"reports in {destination}/" + (f"; trace in {trace_path}" if trace_path else ""))
    if plot:
        for path in plot_run(destination):
            click.echo(f"plot: {path}")


@main.command()
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("--trace", "trace_file", metavar="FILE", help="the trace to read (default: the one the run wrote).")
@click.option(
    "--layer", type=int, metavar="N", help="the layer whose buffer occupancy to draw (default: most stalled)."
)
@_user_errors
def plot(outdir: str, trace_file: str | None, layer: int | None) -> None:
    """Draw a finished run's plots as PNGs into its report folder OUTDIR."""
    _need_matplotlib()
    folder = _report_folder(Path(outdir))
    for path in plot_run(folder, trace=Path(trace_file) if trace_file else None, layer=layer):
        click.echo(f"plot: {path}")


@main.command()
@_SYSTEM_OPTIONS[0]
@_SYSTEM_OPTIONS[1]
@click.option("--png", metavar="FILE", help="also draw the system's graph to FILE (needs matplotlib).")
@_user_errors
def describe(config: str | None, arch: str | None, png: str | None) -> None:
    """List a system's components, links and routes; optionally draw its graph."""
    system = _read_system(config, arch)[0]
    click.echo(describe_system(system))
    if png:
        click.echo(f"drawing: {draw_system(system, png)}")


@main.command()
@_input_options
@click.option(
    "--vary",
    required=True,
    metavar="NODE.PARAM=V1,V2,...",
    help="the parameter to sweep and its values, e.g. dram.bandwidth_bytes_per_cycle=1,2,4,inf.",
)
@_user_errors
def sweep(config: str | None, arch: str | None, topology: str | None, input_type: str, vary: str) -> None:
    """Run a topology once per value of one parameter and print a row per value (no reports)."""
    inputs = _read_inputs(config, arch, topology, input_type)
    plan = parse_vary(vary)
    rows = iter_sweep(inputs.system, inputs.layers, plan, workload_source=inputs.topology)
    width = max(len(plan.key), *(len(text) for text in plan.texts))
    click.echo(
        f"{plan.key:>{width}}  {'total cycles':>14}  {'stall':>6}  {'DRAM bytes':>14}  dominant stall cause (share)"
    )
    for row in rows:
        moved = "-" if row.dram_bytes is None else str(row.dram_bytes)
        cause = row.dominant_cause
        dominant = "-" if cause is None else f"{cause} ({row.dominant_cause_percent:.1f}%)"
        click.echo(
            f"{row.text:>{width}}  {row.total_cycles:>14}  {share(row.stall_cycles, row.total_cycles):>6}  "
            f"{moved:>14}  {dominant}"
        )


@main.command()
@click.argument("kinds", nargs=-1)
@_user_errors
def components(kinds: tuple[str, ...]) -> None:
    """List registered component kinds with their params, ports and stats."""
    registry = default_registry()
    for index, kind in enumerate(kinds or registry.kinds()):
        if index:
            click.echo()
        click.echo(registry.get(kind).describe())


def _need_matplotlib() -> None:
    """Fail before any work if plots are asked for and matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise DesimError("plots need matplotlib: pip install 'desim[plot]'") from None


def _report_folder(outdir: Path) -> Path:
    """A run's report folder: OUTDIR itself, or the one run folder inside it."""
    if (outdir / "SUMMARY.json").is_file():
        return outdir
    runs = sorted(p for p in outdir.glob("*/SUMMARY.json")) if outdir.is_dir() else []
    if len(runs) == 1:
        return runs[0].parent
    found = f"; it holds several: {', '.join(p.parent.name for p in runs)}" if runs else ""
    raise DesimError(f"not a run's report folder (no SUMMARY.json){found}", file=outdir)


def _default_file(relative: str, flag: str) -> str:
    """A default input: under the working directory, else under the desim checkout."""
    for base in (Path.cwd(), PROJECT_ROOT):
        if (base / relative).is_file():
            return str(base / relative) if base != Path.cwd() else relative
    raise DesimError(f"no {flag} given and the default {relative} was not found; pass {flag} FILE")


def _beside(path: str, config: str) -> str:
    """A path named in a config: as given if it exists, else relative to the config's folder."""
    candidate = Path(config).parent / path
    return path if Path(path).exists() or not candidate.exists() else str(candidate)
