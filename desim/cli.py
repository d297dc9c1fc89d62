"""The ``desim`` command: run a simulation, sweep a parameter, list the component kinds.

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
from desim.errors import DesimError, DesimWarning
from desim.io.arch_yaml import read_arch_yaml
from desim.io.reports import ReportWriter
from desim.io.scalesim_cfg import read_scalesim_cfg
from desim.io.topology import FORMATS, read_topology
from desim.registry import default_registry
from desim.simulation import Simulation
from desim.sweep import iter_sweep, parse_vary
from desim.system import System
from desim.workload import Layer

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


def _input_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that name a run's inputs, shared by ``run`` and ``sweep``: -c, -a, -t, -i."""
    for option in reversed(
        (
            click.option("-c", "--config", help=f"SCALE-Sim .cfg file (default: {DEFAULT_CONFIG})."),
            click.option("-a", "--arch", help="native YAML architecture file (instead of -c)."),
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


def _read_inputs(config: str | None, arch: str | None, topology: str | None, input_type: str) -> _Inputs:
    """The system and the layers the -c/-a/-t/-i options name, defaults filled in."""
    if config and arch:
        raise DesimError("give a SCALE-Sim config (-c) or a YAML architecture (-a), not both")
    if arch:
        system = read_arch_yaml(arch)
        configured_topology = None
    else:
        config = config or _default_file(DEFAULT_CONFIG, "-c")
        cfg = read_scalesim_cfg(config)
        system = cfg.system()
        configured_topology = _beside(cfg.topology, config) if cfg.topology else None
    topology = topology or configured_topology or _default_file(DEFAULT_TOPOLOGY, "-t")
    return _Inputs(system, read_topology(topology, input_type), str(arch or config), str(topology))


@main.command()
@_input_options
@click.option("-p", "--outdir", default="outputs", show_default=True, help="reports go to OUTDIR/<run_name>/.")
@click.option("-q", "--quiet", is_flag=True, help="do not print a line per layer.")
@_user_errors
def run(config: str | None, arch: str | None, topology: str | None, outdir: str, input_type: str, quiet: bool) -> None:
    """Simulate a topology on an architecture and write the reports."""
    inputs = _read_inputs(config, arch, topology, input_type)
    system, layers, topology = inputs.system, inputs.layers, inputs.topology
    simulation = Simulation(system)
    try:
        simulation.check(layers)
    except DesimError as error:
        raise error.located(file=topology) from None
    destination = Path(outdir) / system.name
    started = time.perf_counter()
    described = {"architecture": inputs.architecture, "topology": topology, "input_type": input_type}
    with ReportWriter(destination, system, inputs=described) as reports:
        for result in simulation.run(layers):
            reports.add(result)
            if not quiet:
                click.echo(_layer_line(reports.layers[-1], reports.array, result.stats))
        reports.write_summary()
    totals = sum(layer["total_cycles"] for layer in reports.layers)
    stalls = sum(layer["stall_cycles"] for layer in reports.layers)
    click.echo(
        f"{len(layers)} layers, {totals} cycles, {stalls} stall cycles "
        f"({_share(stalls, totals)}) in {time.perf_counter() - started:.2f} s; reports in {destination}/"
    )


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
            f"{row.text:>{width}}  {row.total_cycles:>14}  {_share(row.stall_cycles, row.total_cycles):>6}  "
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


def _layer_line(layer: dict[str, Any], array: str, stats: dict[str, Any]) -> str:
    total, stall = layer["total_cycles"], layer["stall_cycles"]
    util = stats[f"{array}.overall_util_percent"]
    return (
        f"layer {layer['id']:>3} {layer['name']:<16} {total:>11} cycles  "
        f"stall {stall:>10} ({_share(stall, total)})  util {util:6.2f}%"
    )


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0.0%"


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
