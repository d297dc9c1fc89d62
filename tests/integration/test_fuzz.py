"""Fuzzing the command line: for any input file, ``desim run`` exits 0 or 2, within 10 s.

The promise: given any architecture (``-c`` or ``-a``) and topology (``-t``) file, ``desim run``
either simulates it (exit 0, and every row of ``STALL_REPORT.csv`` closes its ledger) or refuses
it (exit 2, one ``desim: error: ...`` line on stderr after any warnings). Any other exit status, a
traceback, a ledger that does not add up or a run longer than ``TIME_LIMIT_SECONDS`` breaks it.

Three strategies make the inputs: valid small systems written as YAML (which must run), small
valid files with their text mutated, and files of random bytes. They live here so that
``benchmarks/fuzz_inputs.py`` can run thousands of examples of the same strategies and report
every failure rather than stopping at the first.

``DESIM_FUZZ_EXAMPLES`` sets the examples per fuzz test (default ``DEFAULT_EXAMPLES``, which keeps
the three within about 30 s on a 2-core machine while desim keeps its promise).
"""

from __future__ import annotations

import math
import os
import re
import shlex
import signal
import string
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

import pytest
import yaml
from click.testing import CliRunner, Result
from helpers import check_stall_report
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

import desim
import desim.components
from desim.cli import main

TIME_LIMIT_SECONDS = 10.0
"""The longest a run of any input may take (the promise)."""

HARD_LIMIT_SECONDS = 15
"""A run still going after this long is stopped: a hang fails its example rather than stalling the suite, and
Hypothesis, shrinking a slow example, pays at most this much per attempt."""

STOPPED = -1
"""The exit status recorded for a run stopped after ``HARD_LIMIT_SECONDS``."""

DEFAULT_EXAMPLES = 100
EXAMPLES = int(os.environ.get("DESIM_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))

FILE_OPTIONS = ("-c", "-a", "-t")
"""Options whose value names an input file (written into the example's folder)."""

OUR_CODE = (str(Path(desim.__file__).parent), str(Path(desim.components.__file__).parent))
"""Where desim's own source lives: the frames of a traceback that name a crash's place."""

OPERANDS = ("ifmap", "filter", "ofmap")
TOPOLOGY = "topo.csv"
TRUNCATE_BYTES = 2000
"""How much of each input file a reproducer shows."""

CONV_HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"
GEMM_HEADER = "Layer, M, N, K,"

ARCH_BASES = {
    "ideal.cfg": """\
[general]
run_name = fuzz_cfg_4x4_ws

[architecture_presets]
ArrayHeight:    4
ArrayWidth:     4
IfmapSramSzkB:   1
FilterSramSzkB:  1
OfmapSramSzkB:   1
Bandwidth : 10
Dataflow : ws
MemoryBanks:   1

[run_presets]
InterfaceBandwidth: CALC
""",
    "user.cfg": """\
[general]
run_name = "fuzz_cfg_3x5_os"

[architecture_presets]
ArrayHeight:    3
ArrayWidth:     5
IfmapSramSz:   0.5
FilterSramSz:  0.5
OfmapSramSz:   0.25
Bandwidth : 2,3
Dataflow : os
WordBytes: 2
ClockMHz: 800

[run_presets]
InterfaceBandwidth: USER
""",
    "arch.yaml": """\
# A small system with a real memory behind a bus.
name: fuzz_yaml
word_bytes: 1
clock_mhz: 1000

components:
  array:       {kind: systolic_array, rows: 4, cols: 4, dataflow: ws}
  sram_ifmap:  {kind: scratchpad, operand: ifmap, capacity_bytes: 256, buffering: lookahead}
  sram_filter: {kind: scratchpad, operand: filter, capacity_bytes: 256, banks: 2, ports_per_bank: 1}
  sram_ofmap:  {kind: scratchpad, operand: ofmap, capacity_bytes: 256, outstanding_reads: 2}
  bus:         {kind: bus, bandwidth_bytes_per_cycle: 16, latency_cycles: 1}
  dram:
    kind: dram
    bandwidth_bytes_per_cycle: 4.5
    latency_cycles: 10
    transaction_bytes: 64
    row_bytes: 256
    row_miss_cycles: 3
    banks: 2
    scheduling: fr-fcfs

links:
  - {from: array.ifmap, to: sram_ifmap.compute}
  - {from: array.filter, to: sram_filter.compute}
  - {from: array.ofmap, to: sram_ofmap.compute}
  - {from: sram_ifmap.memory, to: bus.clients, latency_cycles: 2, bandwidth_bytes_per_cycle: 8}
  - [sram_filter.memory, bus.clients]
  - [sram_ofmap.memory, bus.clients]
  - [bus.memory, dram.clients]
""",
    "device.yaml": """\
# A small system over a DRAM device, some of its timing and organisation given.
name: fuzz_device
word_bytes: 1
clock_mhz: 1000

components:
  array:       {kind: systolic_array, rows: 4, cols: 4, dataflow: ws}
  sram_ifmap:  {kind: scratchpad, operand: ifmap, capacity_bytes: 256}
  sram_filter: {kind: scratchpad, operand: filter, capacity_bytes: 256}
  sram_ofmap:  {kind: scratchpad, operand: ofmap, capacity_bytes: 256}
  dram:
    kind: dram
    preset: ddr4-3200
    transaction_bytes: 128
    tRCD: 22
    tREFI: 12480
    channel_count: 2
    address_mapping: ro ra ba bg co ch
    row_hit_cap: 4
    granularity: auto

links:
  - {from: array.ifmap, to: sram_ifmap.compute}
  - {from: array.filter, to: sram_filter.compute}
  - {from: array.ofmap, to: sram_ofmap.compute}
  - [sram_ifmap.memory, dram.clients]
  - [sram_filter.memory, dram.clients]
  - [sram_ofmap.memory, dram.clients]
""",
}
"""Small valid architectures to mutate, by file name (which says the format): SCALE-Sim configs
with ideal memory (v2 keys) and with a finite one (v1 keys), a YAML system with a bandwidth-pipe
DRAM and one over a DRAM device."""

TOPOLOGY_BASES = {
    "conv": f"""\
{CONV_HEADER}
Conv1, 8, 8, 3, 3, 2, 4, 1,
DP2, 6, 7, 2, 3, 2, 1, 2, 1,
""",
    "gemm": f"""\
{GEMM_HEADER}
QK, 8, 6, 5,
""",
}
"""Small valid topologies to mutate, by input type (-i)."""

EXTREME_NUMBERS = (
    "0",
    "1",
    "2",
    "3",
    "7",
    "255",
    "4096",
    "-1",
    "-0",
    "1e308",
    "1e-300",
    "9" * 400,
    "nan",
    "inf",
    "-inf",
    ".inf",
    ".nan",
    "1_0",
    "0x10",
    "0o17",
    "010",
    "1:30",
    "+3",
    ".5",
    "1.",
    "1e3",
    "2.5",
    "65536",
    "1000000",
    "2147483648",
    "9007199254740993",
    "\u0661\u0662",  # Arabic-Indic digits: Python's int() reads them as 12
    "\uff11\uff12",  # fullwidth digits
    "",
    " ",
    "true",
    "null",
    "~",
)

SNIPPETS = (
    ",",
    ":",
    "=",
    "#",
    ";",
    "[",
    "]",
    "{",
    "}",
    '"',
    "'",
    "\\",
    "\t",
    "\n",
    "\r",
    "\r\n",
    " ",
    "-",
    ".",
    "%",
    "&",
    "*",
    "!",
    "|",
    ">",
    "?",
    "@",
    "`",
    "\x00",
    "\x1b",
    "\x7f",
    "\ufeff",
    "\u2028",
    "\u00a0",
    "\u00e9",
    "\U0001f600",
    "..",
    "/",
    "%(run_name)s",
)
"""Characters and short strings that mean something to YAML, INI, CSV or a file system."""

YAML_LINES = (
    "name: &anchor fuzz",
    "word_bytes: *anchor",
    "<<: *anchor",
    "base: &base {kind: bus}",
    "  extra: {<<: *base}",
    "---",
    "...",
    "%YAML 1.2",
    "%TAG ! tag:example.com,2000:",
    "? [a, b]",
    ": c",
    "1: 2",
    "null: x",
    "true: false",
    ".inf: 1",
    "[1, 2]: 3",
    "{a: b}: c",
    "word_bytes: !!float '1e400'",
    "word_bytes: !!binary aGVsbG8=",
    "word_bytes: !!python/object:os.system 'true'",
    "word_bytes: !!set {a, b}",
    "word_bytes: !!timestamp 2001-12-14",
    "word_bytes: !!timestamp x",
    "word_bytes: !!bool maybe",
    "name: 2024-02-29",
    "name: 2024-02-30",
    "name: 2001-12-14 25:00:00",
    "word_bytes: !custom 1",
    "clock_mhz: 1e400",
    "clock_mhz: 0",
    "clock_mhz: -5",
    "name: ..",
    "name: ''",
    "name: [a]",
    "name: " + "x" * 300,
    "components: []",
    "components: ~",
    "links: {}",
    "links:",
    "  - [array.ifmap]",
    "  - [a.b, c.d, e.f]",
    "  - {from: array.ifmap, to: array.ifmap}",
    "  - {from: bus.memory, to: bus.clients}",
    "  - {from: dram.clients, to: bus.memory}",
    "  - {from: array.ifmap, to: sram_ifmap.compute, latency_cycles: 5}",
    "  - {from: sram_ifmap.memory, to: dram.clients}",
    "  extra: {kind: scratchpad, operand: ifmap}",
    "  array2: {kind: systolic_array}",
    "  bus2: {kind: bus}",
    "  dram: {kind: dram}",
    "\tname: tab",
    "key: 'unterminated",
    'key: "\\x00\\ud800"',
    "[" * 150 + "]" * 150,
    "x: " + "{a: " * 150 + "b" + "}" * 150,
    "x: " + "[" * 5000,
    "- " * 120 + "deep",
)
"""Lines to insert into a YAML architecture: anchors and aliases, tags, non-string keys, deep nesting."""

CFG_LINES = (
    "[general]",
    "[architecture_presets]",
    "[run_presets]",
    "[network_presets]",
    "[sparsity]",
    "[layout]",
    "[",
    "[]",
    "no value here",
    "= value",
    ": value",
    "  continuation",
    "ArrayHeight: 4",
    "ArrayHeight = 4 ; comment",
    "ArrayWidth: 1e308",
    "Dataflow: rs",
    "Dataflow:",
    "InterfaceBandwidth: USER",
    "InterfaceBandwidth: calc",
    "Bandwidth: 0",
    "Bandwidth: ,,",
    "Bandwidth: 1,-1",
    "MemoryBanks: 4",
    "SparsitySupport: true",
    "SparsitySupport: false",
    "UseRamulatorTrace: true",
    "ReadRequestBuffer: 32",
    "WordBytes: 0",
    "WordBytes: 1000000",
    "ClockMHz: nan",
    "TopologyCsvLoc: /dev/zero",
    "TopologyCsvLoc: ../../../../etc/passwd",
    "IfmapOffset: 0",
    "run_name = ../escape",
    "run_name = ",
    "run_name = " + "x" * 300,
    "%(run_name)s: 1",
    "x: %(ArrayHeight)s",
)
"""Lines to insert into a SCALE-Sim config: sections, keys, values and syntax it may or may not know."""

CSV_LINES = (
    "",
    ",,,,,,,,",
    CONV_HEADER,
    GEMM_HEADER,
    "L, 8, 8, 3, 3, 1, 1, 1,",
    "L, 8, 8, 3, 3, 1, 1",
    "L, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1,",
    "L, 8, 8, 9, 3, 1, 1, 1,",
    "L, 8, 8, 3, 3, 1, 1, 0,",
    "L, 0, 0, 0, 0, 0, 0, 0,",
    '"quoted, name", 8, 8, 3, 3, 1, 1, 1,',
    '"unterminated, 8, 8, 3, 3, 1, 1, 1,',
    "L\t8\t8\t3\t3\t1\t1\t1",
    "L; 8; 8; 3; 3; 1; 1; 1;",
    "DP, 8, 8, 3, 3, 8, 1, 1,",
    "G, 8, 6, 5,",
    "G, 8, 6,",
    "G, 1, 1, 1, 1,",
    "G, 0, 6, 5,",
    "#comment, 1, 2, 3,",
    "L, 8, 8, 3, 3, 1, 1, 1, 2,",
    "L, 1e3, 8, 3, 3, 1, 1, 1,",
    "L, 8.0, 8, 3, 3, 1, 1, 1,",
    "L, 65535, 65535, 1, 1, 1, 1, 1,",
    "G, 100000, 1, 1,",
    "G, 1, 100000, 1,",
    "G, 1, 1, 100000,",
)
"""Lines to insert into a topology CSV: short, long, malformed rows, and rows too large to simulate."""

WORK_LIMIT = 10**7
"""The most work (the product of a topology row's numbers) a mutated input may ask for and stay in
the fuzz's scope. The promise is about what a run does with malformed input: a valid layer ten
times AlexNet's first on a 3x5 array with 256-byte buffers is simply a long simulation (its speed
is ``benchmarks/``' business), while the size limits desim checks before time starts (2^31
elements, folds, steps, layers) are pinned case by case in ``test_cli.py``."""

LINES_FOR = {".cfg": CFG_LINES, ".yaml": YAML_LINES, ".csv": CSV_LINES}
"""The lines an inserted or replaced line comes from, by the file's suffix."""

_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|\.inf|inf")
_VALUE = re.compile(r"(?<=: )[^,}\]\n]+")


def asks_for_much_work(topology: bytes | None) -> bool:
    """Whether a topology holds a row that desim might accept and that asks for more than ``WORK_LIMIT``.

    A row counts if its numeric fields (plain decimals, as desim reads them) are all within the
    2^31 a field may be, and their product passes the limit: the MACs of a GEMM, and more than the
    MACs of a conv layer. Rows desim refuses on sight (a field over 2^31) stay in scope.
    """
    for line in (topology or b"").decode("utf-8", errors="replace").splitlines():
        numbers = [
            int(cell) for cell in (cell.strip() for cell in line.split(",")) if cell.isascii() and cell.isdigit()
        ]
        if len(numbers) >= 3 and max(numbers) <= 2**31 and math.prod(numbers) > WORK_LIMIT:
            return True
    return False


def arch_option(name: str) -> str:
    """The option naming an architecture file: -a for YAML, -c for a SCALE-Sim config."""
    return "-a" if name.endswith(".yaml") else "-c"


def run_options(arch: str, input_type: str) -> tuple[str, ...]:
    """The options of a run on the architecture file ``arch`` and the topology file, rows of ``input_type``."""
    return (arch_option(arch), arch, "-t", TOPOLOGY, "-i", input_type)


# ---------------------------------------------------------------------------------------------
# Running an example and judging it


@dataclass(frozen=True)
class FuzzCase:
    """One ``desim run`` to try: the input files to write and the options that name them.

    Attributes:
        strategy: the strategy that made it (``valid``, ``mutated`` or ``bytes``).
        files: each input file's name and contents; contents None puts a folder in the file's place.
        options: the run's options besides ``-q -p OUTDIR``; a value after ``-c``, ``-a`` or ``-t``
            is a file name, taken in the example's folder (a name absent from ``files`` is missing).
        valid: True if the input is valid, so that refusing it (exit 2) is a failure too.
    """

    strategy: str
    files: tuple[tuple[str, bytes | None], ...]
    options: tuple[str, ...]
    valid: bool = False

    def command_line(self) -> str:
        """The command that reproduces this case, run in a folder holding its files."""
        return shlex.join(["desim", "run", "-q", "-p", "out", *self.options])

    def reproducer(self, limit: int = TRUNCATE_BYTES) -> str:
        """The input files, each cut to ``limit`` bytes, and the command line that reproduce this case.

        A file of printable UTF-8 text is shown as it is; any other as a Python bytes literal, to
        write with ``Path(name).write_bytes(...)``.
        """
        parts = []
        for name, contents in self.files:
            if contents is None:
                parts.append(f"--- {name}: a folder ---")
                continue
            cut = f"\n[... {len(contents) - limit} more bytes]" if len(contents) > limit else ""
            try:
                text = contents.decode()
            except UnicodeDecodeError:
                text = None
            if text is not None and all(char.isprintable() or char in "\n\t" for char in text):
                parts.append(
                    f"--- {name} ({len(contents)} bytes) ---\n{contents[:limit].decode(errors='replace')}{cut}"
                )
            else:
                parts.append(f"--- {name} ({len(contents)} bytes, as Python bytes) ---\n{contents[:limit]!r}{cut}")
        parts.append(f"--- command (in the folder holding the files) ---\n{self.command_line()}")
        return "\n".join(parts)


class Verdict(NamedTuple):
    """Whether a run kept the promise.

    Attributes:
        problem: how the run broke the promise, or None if it kept it.
        kind: a short label for the problem, the same for the same failure (to group them), or None.
        ledger_failed: True if the run exited 0 but its STALL_REPORT.csv did not add up.
    """

    problem: str | None = None
    kind: str | None = None
    ledger_failed: bool = False


KEPT = Verdict()


@dataclass(frozen=True)
class Outcome:
    """What one run did, and whether it kept the promise.

    Attributes:
        exit_code: the run's exit status, or ``STOPPED`` if it was stopped after ``HARD_LIMIT_SECONDS``.
        seconds: the run's wall time.
        verdict: whether the run kept the promise.
        output: the run's stdout and stderr, and the traceback of an exception that escaped the command.
    """

    exit_code: int
    seconds: float
    verdict: Verdict
    output: str

    @property
    def problem(self) -> str | None:
        """How the run broke the promise, or None if it kept it."""
        return self.verdict.problem

    @property
    def kind(self) -> str | None:
        """The label of the run's problem, or None."""
        return self.verdict.kind

    @property
    def ledger_failed(self) -> bool:
        """True if the run exited 0 but its STALL_REPORT.csv did not add up."""
        return self.verdict.ledger_failed

    @property
    def crashed(self) -> bool:
        """True if the run ended other than with status 0 or 2 (an exception included), or its ledger failed.

        A run stopped for taking too long did not crash: it broke the time limit instead.
        """
        return self.exit_code not in (0, 2, STOPPED) or self.ledger_failed

    def report(self, case: FuzzCase) -> str:
        """A failure message: the problem, the run's output and the reproducer."""
        return f"{self.problem}\n{self.output}\n{case.reproducer()}"


class _Hung(BaseException):
    """Raised into a run that outlives ``HARD_LIMIT_SECONDS``.

    A BaseException, so that neither desim's error handling nor click's test runner (which both
    catch Exception) turns it into an ordinary failure of the run.
    """


@contextmanager
def _hard_limit(seconds: int) -> Iterator[None]:
    """Raise _Hung in the block if it runs longer than ``seconds`` (in the main thread only: a signal does it).

    The alarm rings again every second until the block ends: an exception raised while Python runs a
    garbage-collector callback (Hypothesis installs one) is printed and dropped, so one ring may be lost.
    """
    try:
        previous = signal.signal(signal.SIGALRM, _raise_hung)
    except ValueError:  # not the main thread: no alarm, and a hang hangs
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        while True:  # a ring while disarming must not leave the alarm set
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
                break
            except _Hung:
                continue


def _raise_hung(signum: int, frame: FrameType | None) -> None:
    raise _Hung


def run_case(case: FuzzCase) -> Outcome:
    """Write the case's files into a fresh folder, run ``desim run`` on them in-process and judge the result."""
    with tempfile.TemporaryDirectory(prefix="desim-fuzz-") as name:
        folder = Path(name)
        for file_name, contents in case.files:
            if contents is None:
                (folder / file_name).mkdir()
            else:
                (folder / file_name).write_bytes(contents)
        options = [
            str(folder / value) if index and case.options[index - 1] in FILE_OPTIONS else value
            for index, value in enumerate(case.options)
        ]
        outdir = folder / "out"
        # DESIM_DEBUG prints an internal error's traceback, which says where the crash is.
        runner = CliRunner(env={"DESIM_DEBUG": "1"})
        started = time.perf_counter()
        try:
            with _hard_limit(HARD_LIMIT_SECONDS):
                result = runner.invoke(main, ["run", "-q", "-p", str(outdir), *options])
        except _Hung:
            seconds = time.perf_counter() - started
            return Outcome(STOPPED, seconds, Verdict(f"still running after {seconds:.1f} s; stopped", "hang"), "")
        seconds = time.perf_counter() - started
        verdict = judge(case, result, outdir)
        if verdict == KEPT and seconds > TIME_LIMIT_SECONDS:
            verdict = Verdict(f"took {seconds:.1f} s, over the {TIME_LIMIT_SECONDS:g} s limit", "slow")
        output = result.output
        if result.exception is not None and result.exc_info and not isinstance(result.exception, SystemExit):
            output += "".join(traceback.format_exception(*result.exc_info))
        return Outcome(result.exit_code, seconds, verdict, output)


def judge(case: FuzzCase, result: Result, outdir: Path) -> Verdict:
    """Whether a finished run kept the promise: exit 0 with a ledger that adds up, or a one-line refusal."""
    error = result.exception
    if error is not None and not isinstance(error, SystemExit):
        frames = [(frame.filename, frame.lineno) for frame in traceback.extract_tb(error.__traceback__)]
        return Verdict(f"exception escaped: {type(error).__name__}: {error}", _signature(type(error).__name__, frames))
    if result.exit_code not in (0, 2):
        internal = re.search(r"internal error: (\w+)", result.stderr)
        frames = [(path, int(line)) for path, line in re.findall(r'File "([^"]*)", line (\d+)', result.stderr)]
        what = internal.group(1) if internal else f"exit {result.exit_code}"
        return Verdict(f"exit status {result.exit_code}", _signature(what, frames))
    if result.exit_code == 2:
        if outdir.exists():  # a refused input must leave no output behind, not even an empty folder
            return Verdict(f"exit 2, but the output folder was made: {sorted(outdir.rglob('*'))}", "refusal wrote")
        return judge_refusal(case, result.stderr)
    if "Traceback" in result.stderr:
        return Verdict(f"exit 0 with a traceback:\n{result.stderr}", "traceback on success")
    # One report in the run's folder, or one per array in its subfolders when there are several.
    reports = sorted(outdir.glob("*/STALL_REPORT.csv")) or sorted(outdir.glob("*/*/STALL_REPORT.csv"))
    runs = {report.parent if report.parent.parent == outdir else report.parent.parent for report in reports}
    if len(runs) != 1:
        return Verdict(f"exit 0 but {len(reports)} STALL_REPORT.csv files", "no stall report")
    try:
        for report in reports:
            check_stall_report(report)
    except AssertionError as failed:
        return Verdict(f"STALL_REPORT.csv does not add up: {failed}", "ledger", ledger_failed=True)
    except (ValueError, KeyError) as failed:  # a report the checker cannot even read
        return Verdict(f"STALL_REPORT.csv unreadable: {type(failed).__name__}: {failed}", "ledger", ledger_failed=True)
    return KEPT


def judge_refusal(case: FuzzCase, stderr: str) -> Verdict:
    """Whether an exit-2 run kept the promise: one ``desim: error:`` line after any warnings, for an invalid input."""
    lines = [line for line in stderr.splitlines() if not line.startswith("desim: warning: ")]
    if "Traceback" in stderr or len(lines) != 1 or not lines[0].startswith("desim: error: "):
        return Verdict(f"exit 2 without exactly one 'desim: error:' line:\n{stderr}", "malformed error message")
    if case.valid:
        return Verdict(f"a valid input was refused: {lines[0]}", "valid input refused")
    return KEPT


def _signature(what: str, frames: list[tuple[str, int]]) -> str:
    """A crash's label: what was raised, and the innermost frame of desim's own code it passed through."""
    ours = [(path, line) for path, line in frames if path.startswith(OUR_CODE)]
    return f"{what} at {Path(ours[-1][0]).name}:{ours[-1][1]}" if ours else what


# ---------------------------------------------------------------------------------------------
# Valid systems


_NAME_CHARS = string.ascii_letters + string.digits + "_-. \u00e9\u03bb"
run_names = st.text(alphabet=_NAME_CHARS, min_size=1, max_size=24).filter(
    lambda name: name.strip() not in ("", ".", "..")
)
node_names = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
layer_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,11}", fullmatch=True)
STANDARD_NAMES = ("array", "sram_ifmap", "sram_filter", "sram_ofmap", "bus", "dram")


def bandwidths(low: float) -> st.SearchStrategy[float]:
    """A bandwidth from ``low`` to 64 bytes/cycle, integral, short or with every digit a float has; or inf."""
    finite = st.one_of(
        st.integers(math.ceil(low), 64),
        st.sampled_from([0.5, 1.5, 2.25, 3.3, 10.1, 63.99]).filter(lambda value: value >= low),
        st.floats(low, 64),
    )
    return st.one_of(st.just(math.inf), finite)


@st.composite
def conv_rows(draw: st.DrawFn) -> list[Any]:
    """One small conv layer as a CSV row: name, H, W, R, S, C, N, stride (and sometimes a width stride)."""
    height, width = draw(st.integers(1, 16)), draw(st.integers(1, 16))
    name = draw(layer_names)
    if draw(st.integers(0, 5)) == 0:
        name = f"{name}DP"  # depthwise: one single-channel layer per channel
    row = [name, height, width, draw(st.integers(1, height)), draw(st.integers(1, width))]
    row += [draw(st.integers(1, 8)), draw(st.integers(1, 16)), draw(st.integers(1, 3))]
    if draw(st.booleans()):
        row.append(draw(st.integers(1, 3)))
    return row


gemm_rows = st.tuples(layer_names, st.integers(1, 32), st.integers(1, 32), st.integers(1, 32)).map(list)


@st.composite
def topologies(draw: st.DrawFn) -> tuple[str, str]:
    """A topology CSV of 1 to 3 small layers, and its input type (conv or gemm)."""
    input_type = draw(st.sampled_from(["conv", "gemm"]))
    rows = draw(st.lists(conv_rows() if input_type == "conv" else gemm_rows, min_size=1, max_size=3))
    separator = draw(st.sampled_from([", ", ","]))
    ending = draw(st.sampled_from([",", ""]))
    header = CONV_HEADER if input_type == "conv" else GEMM_HEADER
    lines = [header, *(separator.join(str(value) for value in row) + ending for row in rows)]
    return "\n".join(lines) + "\n", input_type


def scratchpads(operand: str, least: int) -> st.SearchStrategy[dict[str, Any]]:
    """A scratchpad for ``operand`` of at least ``least`` bytes (often just above), its other params optional.

    A single-ported scratchpad needs a byte per bank at least (desim refuses 4 banks of 2 bytes).
    """
    return st.fixed_dictionaries(
        {
            "kind": st.just("scratchpad"),
            "operand": st.just(operand),
            "capacity_bytes": st.one_of(st.integers(least, 4 * least), st.integers(least, 64 * 1024)),
        },
        optional={
            "buffering": st.sampled_from(["double", "lookahead"]),
            "banks": st.integers(1, 4),
            "ports_per_bank": st.integers(1, 2),
            "outstanding_reads": st.integers(1, 4),
        },
    ).filter(lambda pad: pad.get("ports_per_bank") != 1 or pad.get("banks", 1) <= pad["capacity_bytes"])


buses = st.fixed_dictionaries(
    {"kind": st.just("bus")},
    optional={"bandwidth_bytes_per_cycle": bandwidths(1), "latency_cycles": st.integers(0, 20)},
)
drams = st.fixed_dictionaries(
    {"kind": st.just("dram")},
    optional={
        "bandwidth_bytes_per_cycle": bandwidths(0.5),
        "latency_cycles": st.integers(0, 50),
        "row_miss_cycles": st.integers(0, 30),
        "banks": st.integers(1, 8),
        "row_bytes": st.sampled_from([64, 256, 2048]),
        "transaction_bytes": st.sampled_from([64, 256, 4096]),
        "scheduling": st.sampled_from(["fr-fcfs", "fcfs"]),
    },
)
global_buffers = st.fixed_dictionaries(
    {"kind": st.just("global_buffer")},
    optional={
        "capacity_bytes": st.integers(1, 64 * 1024),
        "line_bytes": st.sampled_from([1, 16, 64, 4096]),
        "policy": st.sampled_from(["planned", "lru"]),
        "operands": st.lists(st.sampled_from(OPERANDS), min_size=1, max_size=3, unique=True),
        "bandwidth_bytes_per_cycle": bandwidths(1),
        "latency_cycles": st.integers(0, 10),
        "transaction_bytes": st.sampled_from([64, 4096]),
    },
)
crossbars = st.fixed_dictionaries(
    {"kind": st.just("crossbar")},
    optional={
        "select": st.sampled_from(["address", "operand"]),
        "interleave_bytes": st.sampled_from([1, 64, 4096]),
        "transaction_bytes": st.sampled_from([64, 4096]),
        "multicast": st.booleans(),
    },
)
link_attributes = st.fixed_dictionaries(
    {}, optional={"bandwidth_bytes_per_cycle": bandwidths(1), "latency_cycles": st.integers(0, 20)}
)


@st.composite
def architectures(draw: st.DrawFn) -> str:
    """A valid YAML architecture, keys and links in any order: one array (or two, sharing the work)
    with any mapper, three scratchpads (or IFMAP and FILTER in one), a bus, and below it a DRAM,
    a global buffer over a DRAM, or a crossbar over DRAM channels; partial sums of any width, and
    layers cold or forwarding."""
    word_bytes = draw(st.integers(1, 4))
    rows, cols = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    accumulator_bytes = draw(st.integers(0, 8)) if draw(st.integers(0, 3)) == 0 else None
    # Each operand's room must hold two array edges of elements, at the widest an element may be (a
    # partial sum may be wider than a word; 0 means a word): that much passes to or from the array each cycle.
    least = 2 * max(rows, cols) * max(word_bytes, accumulator_bytes or 0)
    names = STANDARD_NAMES if draw(st.booleans()) else draw(st.lists(node_names, min_size=6, max_size=6, unique=True))
    bus, dram = names[4], names[5]
    taken = set(names)

    def fresh(name: str) -> str:
        """``name``, or underscores after it, to be unlike every drawn node name."""
        while name in taken:
            name += "_"
        taken.add(name)
        return name

    dataflow = draw(st.sampled_from(["os", "ws", "is"]))
    arrays = [(names[0], dict(zip(OPERANDS, names[1:4], strict=True)))]
    if draw(st.integers(0, 4)) == 0:  # a second array with its own buffers
        second = {op: fresh(f"{node}_b") for op, node in zip(OPERANDS, names[1:4], strict=True)}
        arrays.append((fresh(f"{names[0]}_b"), second))
    unified = draw(st.integers(0, 4)) == 0  # IFMAP and FILTER in one buffer (the IFMAP buffer's name)
    components: dict[str, Any] = {}
    links = []
    mapper = draw(st.sampled_from(["scalesim", "psum-resident", "min-traffic", "explicit"]))
    for array, buffers in arrays:
        components[array] = {"kind": "systolic_array", "rows": rows, "cols": cols, "dataflow": dataflow}
        if mapper != "scalesim" or draw(st.booleans()):
            components[array]["mapper"] = mapper
        if mapper == "explicit":  # any order and tile runs when partial sums may spill
            temporal = {"os": "K", "ws": "M", "is": "N"}[dataflow]
            spec = {"order": "".join(draw(st.permutations("MNK"))), temporal: draw(st.integers(1, 64))}
            components[array]["mapping"] = {**spec, "psums": "spill", "storage_tiles": draw(st.booleans())}
        if unified:
            buffers = {**buffers, "filter": buffers["ifmap"]}
        for operand, node in buffers.items():
            if node not in components:
                shared = [op for op, other in buffers.items() if other == node]
                pad = draw(scratchpads(operand, least * len(shared)))
                if len(shared) > 1:
                    del pad["operand"]
                    if draw(st.booleans()):
                        pad["operands"] = shared
                components[node] = pad
                links.append((f"{node}.memory", f"{bus}.clients", draw(link_attributes)))
            # The array's links stay ideal (its fold timing sets their rate); the others may be slow or late.
            links.append((f"{array}.{operand}", f"{node}.compute", {}))
    components[bus] = draw(buses)
    below = draw(st.sampled_from(["dram", "dram", "l2", "channels"]))
    if below == "l2":
        l2 = fresh("l2")
        components[l2] = draw(global_buffers)
        links.append((f"{bus}.memory", f"{l2}.clients", draw(link_attributes)))
        links.append((f"{l2}.memory", f"{dram}.clients", draw(link_attributes)))
        components[dram] = draw(drams)
    elif below == "channels":
        xbar = fresh("xbar")
        components[xbar] = draw(crossbars)
        links.append((f"{bus}.memory", f"{xbar}.clients", draw(link_attributes)))
        for channel in range(draw(st.integers(2, 3))):
            node = fresh(f"{dram}{channel}")
            components[node] = draw(drams)
            links.append((f"{xbar}.memory", f"{node}.clients", draw(link_attributes)))
    else:
        links.append((f"{bus}.memory", f"{dram}.clients", draw(link_attributes)))
        components[dram] = draw(drams)
    top: dict[str, Any] = {"name": draw(run_names), "word_bytes": word_bytes}
    if draw(st.booleans()):
        top["clock_mhz"] = draw(st.sampled_from([1, 200, 1000, 1234.5]))
    if len(arrays) > 1 or draw(st.integers(0, 9)) == 0:
        top["split"] = draw(st.sampled_from(["every", "n", "m"]))
    if accumulator_bytes is not None:
        top["accumulator_bytes"] = accumulator_bytes
    if draw(st.booleans()):
        top["inter_layer"] = draw(st.sampled_from(["cold", "forward"]))
    top["components"] = {node: components[node] for node in draw(st.permutations(list(components)))}
    top["links"] = [
        [source, target] if not attributes and draw(st.booleans()) else {"from": source, "to": target, **attributes}
        for source, target, attributes in draw(st.permutations(links))
    ]
    ordered = {key: top[key] for key in draw(st.permutations(list(top)))}
    style = draw(st.sampled_from([False, None, True]))  # block, flow collections of scalars, all flow
    return yaml.safe_dump(ordered, sort_keys=False, default_flow_style=style, allow_unicode=draw(st.booleans()))


@st.composite
def valid_systems(draw: st.DrawFn) -> FuzzCase:
    """A valid small system (YAML) with a valid small workload: the run must succeed."""
    topology, input_type = draw(topologies())
    files = (("arch.yaml", draw(architectures()).encode()), (TOPOLOGY, topology.encode()))
    return FuzzCase("valid", files, run_options("arch.yaml", input_type), valid=True)


# ---------------------------------------------------------------------------------------------
# Mutated files

Edit = Callable[[st.DrawFn, str, tuple[str, ...]], str]
"""An edit of a file's text, given the lines of its format it may insert."""


def _insert(draw: st.DrawFn, text: str, snippet: str) -> str:
    at = draw(st.integers(0, len(text)))
    return text[:at] + snippet + text[at:]


def _delete_characters(draw: st.DrawFn, text: str, lines: tuple[str, ...]) -> str:
    at = draw(st.integers(0, len(text)))
    return text[:at] + text[at + draw(st.integers(1, 8)) :]


def _insert_characters(draw: st.DrawFn, text: str, lines: tuple[str, ...]) -> str:
    return _insert(draw, text, draw(st.one_of(st.sampled_from(SNIPPETS), st.text(min_size=1, max_size=6))))


def _replace_character(draw: st.DrawFn, text: str, lines: tuple[str, ...]) -> str:
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.one_of(st.sampled_from(SNIPPETS), st.characters())) + text[at + 1 :]


def _insert_bom(draw: st.DrawFn, text: str, lines: tuple[str, ...]) -> str:
    return "\ufeff" + text if draw(st.booleans()) else _insert(draw, text, "\ufeff")


def _insert_nul(draw: st.DrawFn, text: str, lines: tuple[str, ...]) -> str:
    return _insert(draw, text, "\x00" * draw(st.integers(1, 3)))


def _replace_number(draw: st.DrawFn, text: str, lines: tuple[str, ...]) -> str:
    numbers = list(_NUMBER.finditer(text))
    if not numbers:
        return text
    match = numbers[draw(st.integers(0, len(numbers) - 1))]
    value = draw(st.one_of(st.sampled_from(EXTREME_NUMBERS), st.integers(-(2**70), 2**70).map(str)))
    return text[: match.start()] + value + text[match.end() :]


def _alias_values(draw: st.DrawFn, text: str, lines: tuple[str, ...]) -> str:
    """Name one ``key: value``'s value with an anchor and make a later value an alias of it."""
    values = list(_VALUE.finditer(text))
    if len(values) < 2:
        return text
    first = draw(st.integers(0, len(values) - 2))
    second = values[draw(st.integers(first + 1, len(values) - 1))]
    text = text[: second.start()] + "*fuzz" + text[second.end() :]
    return text[: values[first].start()] + "&fuzz " + text[values[first].start() :]


def _on_lines(change: Callable[[st.DrawFn, list[str], tuple[str, ...]], None]) -> Edit:
    """An edit of the text's lines, made by ``change`` in place on the list of them."""

    def edit(draw: st.DrawFn, text: str, lines: tuple[str, ...]) -> str:
        split = text.split("\n")
        change(draw, split, lines)
        return "\n".join(split)

    return edit


def _delete_line(draw: st.DrawFn, split: list[str], lines: tuple[str, ...]) -> None:
    del split[draw(st.integers(0, len(split) - 1))]


def _duplicate_line(draw: st.DrawFn, split: list[str], lines: tuple[str, ...]) -> None:
    split.insert(draw(st.integers(0, len(split))), split[draw(st.integers(0, len(split) - 1))])


def _swap_lines(draw: st.DrawFn, split: list[str], lines: tuple[str, ...]) -> None:
    first, second = draw(st.integers(0, len(split) - 1)), draw(st.integers(0, len(split) - 1))
    split[first], split[second] = split[second], split[first]


def _insert_line(draw: st.DrawFn, split: list[str], lines: tuple[str, ...]) -> None:
    split.insert(draw(st.integers(0, len(split))), draw(st.sampled_from(lines)))


def _replace_line(draw: st.DrawFn, split: list[str], lines: tuple[str, ...]) -> None:
    split[draw(st.integers(0, len(split) - 1))] = draw(st.sampled_from(lines))


EDITS: dict[str, Edit] = {
    "delete characters": _delete_characters,
    "insert characters": _insert_characters,
    "replace a character": _replace_character,
    "insert a byte-order mark": _insert_bom,
    "insert NUL bytes": _insert_nul,
    "replace a number": _replace_number,
    "alias a value": _alias_values,
    "delete a line": _on_lines(_delete_line),
    "duplicate a line": _on_lines(_duplicate_line),
    "swap two lines": _on_lines(_swap_lines),
    "insert a line": _on_lines(_insert_line),
    "replace a line": _on_lines(_replace_line),
}
"""Every edit a mutation makes, by name."""

_EDIT_CHOICES = (*EDITS, "replace a number", "replace a number", "insert a line")
"""The edits to draw from: numbers and format-aware lines find more than stray characters, so twice as often."""


@st.composite
def mutated_text(draw: st.DrawFn, text: str, suffix: str) -> str:
    """``text`` (of a file named ``*suffix``) after 1 to 4 random edits."""
    for _ in range(draw(st.integers(1, 4))):
        text = EDITS[draw(st.sampled_from(_EDIT_CHOICES))](draw, text, LINES_FOR[suffix])
    return text


@st.composite
def encoded(draw: st.DrawFn, text: str) -> bytes:
    """``text`` as bytes: mostly UTF-8, sometimes another encoding or cut short, maybe inside a character."""
    encoding = draw(st.sampled_from(["utf-8"] * 6 + ["utf-16", "latin-1", "utf-8-sig", "cut"]))
    if encoding == "cut":
        data = text.encode()
        return data[: draw(st.integers(0, len(data)))]
    return text.encode(encoding, errors="replace")


@st.composite
def mutated_inputs(draw: st.DrawFn) -> FuzzCase:
    """A small valid architecture and topology, one or both with its text mutated."""
    arch = draw(st.sampled_from(list(ARCH_BASES)))
    input_type = draw(st.sampled_from(list(TOPOLOGY_BASES)))
    arch_text, topology = ARCH_BASES[arch], TOPOLOGY_BASES[input_type]
    target = draw(st.sampled_from(["arch", "topology", "both"]))
    if target in ("arch", "both"):
        arch_text = draw(mutated_text(arch_text, Path(arch).suffix))
    if target in ("topology", "both"):
        topology = draw(mutated_text(topology, ".csv"))
    if draw(st.integers(0, 9)) == 0:  # rows of one kind read as the other
        input_type = "gemm" if input_type == "conv" else "conv"
    files = ((arch, draw(encoded(arch_text))), (TOPOLOGY, draw(encoded(topology))))
    assume(not asks_for_much_work(files[1][1]))
    return FuzzCase("mutated", files, run_options(arch, input_type))


# ---------------------------------------------------------------------------------------------
# Random bytes


@st.composite
def random_contents(draw: st.DrawFn, base: str) -> bytes | None:
    """Contents for an input file: random bytes, a valid start with random bytes after it, text, or a folder (None)."""
    shape = draw(st.sampled_from(["bytes", "bytes", "valid start", "text", "folder"]))
    if shape == "folder":
        return None
    if shape == "text":
        return draw(st.text(max_size=200)).encode()
    noise = draw(st.binary(max_size=300))
    if shape == "valid start":
        data = base.encode()
        return data[: draw(st.integers(0, len(data)))] + noise
    return noise


@st.composite
def random_files(draw: st.DrawFn) -> FuzzCase:
    """Random bytes (invalid UTF-8 included) for the architecture, the topology or both; or a file missing."""
    arch = draw(st.sampled_from(list(ARCH_BASES)))
    input_type = draw(st.sampled_from(list(TOPOLOGY_BASES)))
    arch_text, topology = ARCH_BASES[arch].encode(), TOPOLOGY_BASES[input_type].encode()
    target = draw(st.sampled_from(["arch", "topology", "both", "missing arch", "missing topology"]))
    if target in ("arch", "both"):
        arch_text = draw(random_contents(ARCH_BASES[arch]))
    if target in ("topology", "both"):
        topology = draw(random_contents(TOPOLOGY_BASES[input_type]))
    missing = {"missing arch": arch, "missing topology": TOPOLOGY}.get(target)
    files = tuple((name, contents) for name, contents in ((arch, arch_text), (TOPOLOGY, topology)) if name != missing)
    return FuzzCase("bytes", files, run_options(arch, input_type))


STRATEGIES: dict[str, st.SearchStrategy[FuzzCase]] = {
    "valid": valid_systems(),
    "mutated": mutated_inputs(),
    "bytes": random_files(),
}
"""Every strategy by name, for benchmarks/fuzz_inputs.py."""


# ---------------------------------------------------------------------------------------------
# The tests

fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
# A mutated file is a small valid one after at most four edits, and random bytes are at most 300 of
# them: small enough to read as found. Shrinking them would rerun a slow example for up to
# HARD_LIMIT_SECONDS per attempt, minutes in all, so those two tests report the example unshrunk.
unshrunk_settings = settings(fuzz_settings, phases=[Phase.explicit, Phase.reuse, Phase.generate])


def check(case: FuzzCase) -> None:
    """Fail with the run's output and a reproducer unless the run kept the promise."""
    outcome = run_case(case)
    assert outcome.problem is None, outcome.report(case)


@fuzz_settings
@given(case=valid_systems())
def test_valid_systems_run_and_close_their_ledgers(case: FuzzCase) -> None:
    check(case)


@unshrunk_settings
@given(case=mutated_inputs())
def test_mutated_files_run_or_are_refused_in_one_line(case: FuzzCase) -> None:
    check(case)


@unshrunk_settings
@given(case=random_files())
def test_random_bytes_run_or_are_refused_in_one_line(case: FuzzCase) -> None:
    check(case)


@pytest.mark.parametrize("arch", list(ARCH_BASES))
@pytest.mark.parametrize("input_type", list(TOPOLOGY_BASES))
def test_the_files_mutated_are_valid(arch: str, input_type: str) -> None:
    """Mutations start from valid files, so that they reach past the first check."""
    files = ((arch, ARCH_BASES[arch].encode()), (TOPOLOGY, TOPOLOGY_BASES[input_type].encode()))
    case = FuzzCase("base", files, run_options(arch, input_type), valid=True)
    outcome = run_case(case)
    assert (outcome.exit_code, outcome.problem) == (0, None), outcome.report(case)


def test_the_judge_flags_a_refused_valid_input_and_a_malformed_refusal() -> None:
    empty = FuzzCase(
        "base", (("arch.yaml", ARCH_BASES["arch.yaml"].encode()), (TOPOLOGY, b"")), run_options("arch.yaml", "conv")
    )
    refused = run_case(empty)  # an empty topology: refused, as it should be
    assert (refused.exit_code, refused.verdict) == (2, KEPT), refused.output
    refused_valid = run_case(replace(empty, valid=True))
    assert (refused_valid.exit_code, refused_valid.kind) == (2, "valid input refused"), refused_valid.output
    for stderr in ("", "desim: error: a\nsecond line\n", "Traceback (most recent call last):\ndesim: error: a\n"):
        assert judge_refusal(empty, stderr).kind == "malformed error message", stderr
    assert judge_refusal(empty, "desim: warning: an ignored key\ndesim: error: a\n") == KEPT
