"""The ``desim`` command: run a simulation, sweep a parameter, plot a run, describe a system, list kinds.

Mistakes in the user's input print one line (``desim: error: file:line: key: what was wrong``)
and exit with status 2, without a traceback. Anything else that goes wrong is desim's fault: it
prints one line asking for a report and exits with status 70 (the traceback only with ``--debug``
or ``DESIM_DEBUG=1``). Ctrl-C exits with status 130, keeping the layers that finished.

Start-up is kept light: simulation, tracing, plotting and drawing modules (and numpy, networkx
and matplotlib with them) are imported inside the commands that use them, so ``desim --help``
stays quick.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import shlex
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from desim import __version__
from desim.console import say
from desim.errors import DesimError, DesimWarning, forget_warnings
from desim.io.topology import FORMATS

if TYPE_CHECKING:
    from desim.system import System
    from desim.workload import Layer

DEFAULT_CONFIG = "configs/scale.cfg"
DEFAULT_TOPOLOGY = "topologies/conv/alexnet.csv"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
TRACE_NAME = "trace.json.gz"
"""The trace ``--plot`` records into the report folder when no ``--trace`` is given."""

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 70  # EX_SOFTWARE
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a batch scheduler, ``docker stop``): a run stops as it does on Ctrl-C."""


def _terminate(number: int, frame: object) -> None:
    raise Terminated


@contextmanager
def _stopping_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while a command runs (in the main thread: only it gets signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _guarded(command: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command so that no traceback reaches the user.

    DesimError: one line, exit 2. Ctrl-C: one line, exit 130 (SIGTERM: 143). Any other exception
    is a bug in desim: one line asking for a report, exit 70, the traceback only when debugging.
    DesimWarnings print plainly.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings(), _stopping_on_sigterm():
            warnings.simplefilter("always", DesimWarning)
            forget_warnings()
            warnings.showwarning = _show_warning
            try:
                return command(*args, **kwargs)
            except DesimError as error:
                click.echo(f"desim: error: {error}", err=True)
                sys.exit(EXIT_USER_ERROR)
            except KeyboardInterrupt as interrupt:
                terminated = isinstance(interrupt, Terminated)
                said = "terminated" if terminated else "interrupted"
                click.echo(f"desim: {said}" + (f"; {interrupt}" if str(interrupt) else ""), err=True)
                sys.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)
            except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
                raise
            except Exception as error:
                if _debugging():
                    traceback.print_exc()
                what = f"{type(error).__name__}: {error}".strip().splitlines()[0]
                context = click.get_current_context(silent=True)
                given = context.find_root().meta.get(ARGUMENTS, []) if context is not None else []
                command_line = shlex.join(["desim", *given])
                click.echo(
                    f"desim: internal error: {what}; please report it with this command line: {command_line}",
                    err=True,
                )
                sys.exit(EXIT_INTERNAL_ERROR)

    return wrapper


def _debugging() -> bool:
    context = click.get_current_context(silent=True)
    flag = context is not None and context.find_root().params.get("debug", False)
    return bool(flag) or os.environ.get("DESIM_DEBUG", "") not in ("", "0")


def _show_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    click.echo(f"desim: warning: {message}", err=True)


ARGUMENTS = "desim.arguments"
"""Where the command line's arguments are kept (in the root context's ``meta``), to quote in a bug report."""


class _Desim(click.Group):
    """The ``desim`` group, keeping the arguments it was given."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        given = list(args)
        context = super().make_context(info_name, args, parent, **extra)
        context.meta[ARGUMENTS] = given
        return context


@click.group(cls=_Desim, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="desim")
@click.option("--debug", is_flag=True, help="show the traceback of an internal error (also: DESIM_DEBUG=1).")
def main(debug: bool) -> None:
    """desim: a discrete-event simulator of DNN accelerators (SCALE-Sim compatible)."""


_SYSTEM_OPTIONS = (
    click.option("-c", "--config", help=f"SCALE-Sim .cfg file (default: {DEFAULT_CONFIG})."),
    click.option("-a", "--arch", help="native YAML architecture file (instead of -c)."),
)


def _input_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that name a run's inputs, shared by ``run`` and ``sweep``: -c, -a, -t, -i, --mapper."""
    for option in reversed(
        (
            *_SYSTEM_OPTIONS,
            click.option(
                "-t",
                "--topology",
                help=f"topology CSV or ONNX model (default: the config's, else {DEFAULT_TOPOLOGY}).",
            ),
            click.option(
                "-i",
                "--input-type",
                "input_type",
                type=click.Choice(FORMATS),
                help="what -t holds: conv rows, GEMM rows (M, N, K) or an ONNX model [default: onnx for a .onnx "
                "file, else conv].",
            ),
            click.option(
                "--skip-unsupported",
                is_flag=True,
                help="leave out the ONNX nodes desim cannot map (listed in a warning) instead of stopping.",
            ),
            click.option(
                "--mapper",
                metavar="NAME",
                help="the mapper every compute unit uses (scalesim, psum-resident, min-traffic, explicit, ...).",
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
    input_type: str

    @property
    def files(self) -> tuple[str, ...]:
        """The input files, which no output may replace."""
        return (self.architecture, self.topology)


def _read_system(config: str | None, arch: str | None) -> tuple[System, str, str | None]:
    """The system -c/-a name (default config filled in), the file it came from, and the config's topology."""
    from desim.io.arch_yaml import read_arch_yaml
    from desim.io.scalesim_cfg import read_scalesim_cfg

    if config and arch:
        raise DesimError("give a SCALE-Sim config (-c) or a YAML architecture (-a), not both")
    if arch:
        return read_arch_yaml(arch), arch, None
    config = config or _default_file(DEFAULT_CONFIG, "-c")
    cfg = read_scalesim_cfg(config)
    return cfg.system(), config, _beside(cfg.topology, config) if cfg.topology else None


def _read_inputs(
    config: str | None,
    arch: str | None,
    topology: str | None,
    input_type: str | None,
    mapper: str | None,
    skip_unsupported: bool,
) -> _Inputs:
    """The system and the layers the -c/-a/-t/-i/--mapper options name, defaults filled in, all checked."""
    from desim.io.topology import read_topology, topology_format
    from desim.simulation import Simulation

    system, source, configured_topology = _read_system(config, arch)
    if mapper is not None:
        system = _with_mapper(system, mapper)
    topology = topology or configured_topology or _default_file(DEFAULT_TOPOLOGY, "-t")
    input_type = topology_format(topology, input_type)
    if skip_unsupported and input_type != "onnx":
        raise DesimError(f"--skip-unsupported is for ONNX models, and -t {topology} is read as {input_type} rows")
    layers = read_topology(topology, input_type, skip_unsupported=skip_unsupported)
    try:
        Simulation(system).check(layers)
    except DesimError as error:
        raise error.located(file=topology) from None
    return _Inputs(system, layers, str(source), str(topology), input_type)


def _with_mapper(system: System, mapper: str) -> System:
    """The system with every compute unit that takes a mapper set to use ``mapper``."""
    from desim.component import Compute
    from desim.registry import installed_mappers

    takers = [node for node in system.nodes_of(Compute) if "mapper" in system.kind_of(node).declared_params]
    if not takers:
        raise DesimError("no compute unit of this system takes a mapper", key="--mapper")
    known = sorted(installed_mappers())
    if mapper not in known:
        raise DesimError(f"unknown mapper {mapper!r} (known: {', '.join(known)})", key="--mapper")
    for node in takers:
        system = system.with_param(node, "mapper", mapper)
    return system


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
    help=f"draw PNG plots into the report folder (needs matplotlib); traces to {TRACE_NAME} there unless --trace.",
)
@click.option("-q", "--quiet", is_flag=True, help="no progress bar and no line per layer; just the closing table.")
@click.option("--show-mapping", is_flag=True, help="print each layer's mapping (even with -q).")
@_guarded
def run(
    config: str | None,
    arch: str | None,
    topology: str | None,
    outdir: str,
    input_type: str | None,
    skip_unsupported: bool,
    mapper: str | None,
    trace_file: str | None,
    trace_layers: str | None,
    plot: bool,
    quiet: bool,
    show_mapping: bool,
) -> None:
    """Simulate a topology on an architecture and write the reports."""
    from desim.console import Progress, layer_line, mapping_lines, summary_table
    from desim.io.outputs import RunFolder, check_writable, relative_to
    from desim.io.reports import REPORT_PATTERNS, ReportWriter, check_reportable
    from desim.plots import PLOT_FILES, need_matplotlib, plot_run
    from desim.simulation import Simulation
    from desim.trace import Trace
    from desim.workload import select_layers

    inputs = _read_inputs(config, arch, topology, input_type, mapper, skip_unsupported)
    system, layers = inputs.system, inputs.layers
    check_reportable(system)
    traced = None
    if trace_layers is not None:
        if not (trace_file or plot):
            raise DesimError("--trace-layers chooses what --trace or --plot records; give one of them")
        traced = select_layers(trace_layers, layers, key="--trace-layers")
    if plot:
        need_matplotlib()
    own_trace = plot and not trace_file
    owned = (*REPORT_PATTERNS, TRACE_NAME, *PLOT_FILES)
    folder = RunFolder(outdir, system.name, owned if plot else REPORT_PATTERNS, owned)
    user_trace = Path(trace_file) if trace_file else None
    if user_trace is not None:
        check_writable(user_trace, "trace")
        _refuse_overwriting(user_trace, "trace", inputs.files, folder.destination, (*REPORT_PATTERNS, *PLOT_FILES))
    started = time.perf_counter()
    described = {"architecture": inputs.architecture, "topology": inputs.topology, "input_type": inputs.input_type}
    plotted: list[Path] = []
    with folder:
        if own_trace:
            trace_path, named = folder.path(TRACE_NAME), TRACE_NAME
        else:
            trace_path = user_trace
            named = relative_to(user_trace, folder.destination) if user_trace is not None else None
        with ReportWriter(folder.path(), system, inputs=described, trace=named) as reports:
            trace = Trace(trace_path, clock_mhz=system.clock_mhz, layers=traced) if trace_path else None
            try:
                with Progress(layers, quiet=quiet) as progress:
                    for result in Simulation(system).run(layers, trace=trace, progress=progress.callback()):
                        reports.add(result)
                        if not folder.published:
                            folder.publish()  # the first layer is done: the reports replace the old ones
                        layer = reports.layers[-1]
                        lines = [] if quiet else [layer_line(layer, layer["overall_util_percent"])]
                        if show_mapping:
                            lines += mapping_lines(layer, result.stats, reports.arrays)
                        progress.finished("\n".join(lines) if lines else None)
            except BaseException as stop:
                if trace is not None:
                    _close_trace(trace, keep=folder.published)
                if isinstance(stop, KeyboardInterrupt):  # say what the reports hold now
                    raise type(stop)(_kept(folder.destination, len(reports.layers))) from None
                if isinstance(stop, DesimError):  # a limit only the simulation could find: name the layer's file
                    raise stop.located(file=inputs.topology) from None
                raise
            if trace is not None:
                trace.close()
            reports.write_summary()
        if plot:
            plotted = plot_run(folder.path(), trace=trace_path)
    say(summary_table(reports.summary(), time.perf_counter() - started))
    destination = folder.destination
    shown_trace = destination / TRACE_NAME if own_trace else user_trace
    say(f"reports in {destination}/" + (f"; trace in {shown_trace}" if shown_trace else ""))
    for path in plotted:
        say(f"plot: {destination / path.name}")


def _refuse_overwriting(
    path: Path, what: str, inputs: tuple[str, ...], folder: Path | None = None, reports: tuple[str, ...] = ()
) -> None:
    """Raise DesimError if writing ``path`` would replace an input file, or one of ``reports`` in ``folder``."""
    for given in inputs:
        if path.exists() and Path(given).exists() and os.path.samefile(path, given):
            raise DesimError(f"refusing to replace the input file {given} with the {what}", file=path)
    in_folder = folder is not None and path.parent.resolve() == folder.resolve()
    if in_folder and any(fnmatch.fnmatchcase(path.name, pattern) for pattern in reports):
        raise DesimError(f"refusing to replace the run's own report {path.name} with the {what}", file=path)


def _kept(destination: Path, finished: int) -> str:
    """What an interrupted run left in its report folder."""
    if not finished:
        return f"no layer had finished, so {destination}/ is as it was"
    return f"{destination}/ keeps the {finished} layer{'s' if finished > 1 else ''} that finished"


def _close_trace(trace: Any, *, keep: bool) -> None:
    """On a run that stopped early: keep the trace of its finished layers if its reports are kept, else drop it."""
    try:
        trace.close() if keep else trace.discard()
    except DesimError as error:  # the reason the run stopped matters more; say this one too
        click.echo(f"desim: error: {error}", err=True)


@main.command()
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("--trace", "trace_file", metavar="FILE", help="the trace to read (default: the one the run wrote).")
@click.option(
    "--layer", type=int, metavar="N", help="the layer whose buffer occupancy to draw (default: most stalled)."
)
@_guarded
def plot(outdir: str, trace_file: str | None, layer: int | None) -> None:
    """Draw a finished run's plots as PNGs into its report folder OUTDIR."""
    from desim.io.outputs import Lock
    from desim.plots import need_matplotlib, plot_run

    need_matplotlib()
    folder = _report_folder(Path(outdir))
    real = folder.resolve()  # the lock a run takes, however the folder is spelled (".", a link)
    with Lock(real.parent / f".{real.name}.lock", folder):  # no run may be rewriting these reports
        for path in plot_run(folder, trace=Path(trace_file) if trace_file else None, layer=layer):
            say(f"plot: {path}")


@main.command()
@_SYSTEM_OPTIONS[0]
@_SYSTEM_OPTIONS[1]
@click.option("--png", metavar="FILE", help="also draw the system's graph to FILE (needs matplotlib).")
@_guarded
def describe(config: str | None, arch: str | None, png: str | None) -> None:
    """List a system's components, links and routes; optionally draw its graph."""
    from desim.describe import describe_system, draw_system

    system, source, _ = _read_system(config, arch)
    listing = describe_system(system)
    if png is not None:  # drawn before anything is printed: a drawing that cannot be made leaves no half output
        _refuse_overwriting(Path(png), "drawing", (source,))
        drawn = draw_system(system, png)
    say(listing)
    if png is not None:
        say(f"drawing: {drawn}")


@main.command()
@_input_options
@click.option(
    "--vary",
    required=True,
    metavar="NODE.PARAM=V1,V2,...",
    help="the parameter to sweep and its values, e.g. dram.bandwidth_bytes_per_cycle=1,2,4,inf.",
)
@_guarded
def sweep(
    config: str | None,
    arch: str | None,
    topology: str | None,
    input_type: str | None,
    skip_unsupported: bool,
    mapper: str | None,
    vary: str,
) -> None:
    """Run a topology once per value of one parameter and print a row per value (no reports)."""
    from desim.console import share
    from desim.sweep import iter_sweep, parse_vary

    plan = parse_vary(vary)
    if mapper is not None and plan.param == "mapper":
        raise DesimError(f"--mapper and --vary {plan.key}=... both choose the mapper; give one of them")
    inputs = _read_inputs(config, arch, topology, input_type, mapper, skip_unsupported)
    rows = iter_sweep(inputs.system, inputs.layers, plan, workload_source=inputs.topology)
    width = max(len(plan.key), *(len(text) for text in plan.texts))
    say(f"{plan.key:>{width}}  {'total cycles':>14}  {'stall':>6}  {'DRAM bytes':>14}  dominant stall cause (share)")
    for row in rows:
        moved = "-" if row.dram_bytes is None else str(row.dram_bytes)
        cause = row.dominant_cause
        dominant = "-" if cause is None else f"{cause} ({row.dominant_cause_percent:.1f}%)"
        say(
            f"{row.text:>{width}}  {row.total_cycles:>14}  {share(row.stall_cycles, row.total_cycles):>6}  "
            f"{moved:>14}  {dominant}"
        )


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, metavar="CSV", help="the topology CSV to write.")
@_guarded
def topology(model: str, output: str) -> None:
    """Write an ONNX MODEL's conv and GEMM layers as a SCALE-Sim topology CSV, and beside it (the
    CSV's name with .unmapped.txt for its suffix) the nodes desim cannot map yet."""
    from desim.io.onnx_import import import_onnx
    from desim.io.outputs import write_atomically
    from desim.io.topology import topology_csv

    layers, unmapped = import_onnx(model)
    if not layers:
        raise DesimError("the model has no layer desim maps (Conv, Gemm, MatMul)", file=model)
    target = Path(output)
    beside = target.with_suffix(".unmapped.txt")
    _refuse_overwriting(target, "topology", (model,))
    _refuse_overwriting(beside, "list of unmapped nodes", (model,))
    text = topology_csv(layers)
    listing = "node, operator, why\n" + "".join(f"{name}, {op}, {why}\n" for name, op, why in unmapped)
    write_atomically(target, lambda file: file.write(text.encode()), "topology")
    write_atomically(beside, lambda file: file.write(listing.encode()), "list of unmapped nodes")
    say(f"{target}: {len(layers)} layer{'s' if len(layers) != 1 else ''}")
    say(f"{beside}: {len(unmapped)} node{'s' if len(unmapped) != 1 else ''} desim cannot map yet")


@main.command("dram-bench")
@click.option("-a", "--arch", required=True, help="YAML architecture holding the memory.")
@click.option("--node", help="the memory to drive (default: the system's one main memory).")
@click.option("--stream", "stream_file", required=True, metavar="FILE", help="one request a line: <hex address> R|W.")
@click.option(
    "--max-in-flight", type=click.IntRange(min=1), metavar="N", help="most requests outstanding (default: no limit)."
)
@click.option(
    "--line-bytes", type=click.IntRange(min=1), default=64, show_default=True, help="bytes each request moves."
)
@click.option("--json", "as_json", is_flag=True, help="print the figures as one JSON object.")
@_guarded
def dram_bench(
    arch: str, node: str | None, stream_file: str, max_in_flight: int | None, line_bytes: int, as_json: bool
) -> None:
    """Drive one memory alone with a request stream and print its timing (to set beside another simulator's)."""
    import json

    from desim.dram_bench import bench, memory_node, read_stream
    from desim.io.arch_yaml import read_arch_yaml

    system = read_arch_yaml(arch)
    system.validate()
    target = memory_node(system, node)
    result = bench(system, target, read_stream(stream_file), line_bytes, max_in_flight)
    if as_json:
        say(json.dumps(result.as_dict()))
        return
    latency = "-" if result.read_latency_ns is None else f"{result.read_latency_ns:.1f} ns"
    say(
        f"{target}: {result.requests:,} requests, {result.bytes:,} bytes; last completed at {result.ns:,.1f} ns "
        f"({result.cycles:,} cycles at {system.clock_mhz:g} MHz); {result.gbps:.2f} GB/s; mean read latency {latency}"
    )


@main.command()
@click.argument("kinds", nargs=-1)
@_guarded
def components(kinds: tuple[str, ...]) -> None:
    """List registered component kinds with their params, ports and stats."""
    from desim.registry import default_registry

    registry = default_registry()
    listings = [registry.get(kind).describe() for kind in kinds or registry.kinds()]  # every name checked first
    if not kinds:
        listings.append(_mappers_listing())
    say("\n\n".join(listings))


def _mappers_listing() -> str:
    """The installed mappers (the ``desim.mappers`` entry points), for a compute unit's ``mapper`` param."""
    from desim.registry import installed_mappers

    lines = ["mappers (a compute unit's mapper param):"]
    for name, loaded in sorted(installed_mappers().items()):
        lines.append(f"  {name}: {getattr(loaded, 'description', '')}")
    return "\n".join(lines)


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
