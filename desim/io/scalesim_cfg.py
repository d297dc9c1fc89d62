"""SCALE-Sim ``.cfg`` files (v1, v2 and v3 keys) and the standard system they describe.

The standard system is one systolic array with IFMAP, FILTER and OFMAP scratchpads on a bus to
one DRAM. ``InterfaceBandwidth: CALC`` makes memory ideal (infinite bandwidth, no latency), which
is what SCALE-Sim's cycle counts assume; ``USER`` gives the DRAM ``Bandwidth`` words per cycle
(summed over banks when several are listed). A word is one byte unless the desim extension key
``WordBytes`` says otherwise; likewise ``ClockMHz`` (default 1000) sets the clock that traces
and GB/s figures use.

SCALE-Sim spellings live only here. Keys that desim does not model yet, and keys it does not
know at all, are named in one warning; keys that only switch off a feature desim does not have
either (``SparsitySupport: false``, ``MemoryBanks: 1``, ...) are accepted quietly.
"""

from __future__ import annotations

import configparser
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from desim.errors import DesimError, DesimWarning, read_text
from desim.limits import MAX_NUMBER, MIN_BANDWIDTH
from desim.params import brief, parse_float, parse_int, show_number
from desim.system import System, run_name_problem

# (section, key) -> meaning; keys are compared lower-cased, as configparser stores them.
MODELLED = {
    ("general", "run_name"),
    ("architecture_presets", "arrayheight"),
    ("architecture_presets", "arraywidth"),
    ("architecture_presets", "ifmapsramszkb"),
    ("architecture_presets", "filtersramszkb"),
    ("architecture_presets", "ofmapsramszkb"),
    ("architecture_presets", "ifmapsramsz"),  # v1 spelling, also in kB
    ("architecture_presets", "filtersramsz"),
    ("architecture_presets", "ofmapsramsz"),
    ("architecture_presets", "dataflow"),
    ("architecture_presets", "bandwidth"),
    ("architecture_presets", "wordbytes"),  # desim extension
    ("architecture_presets", "clockmhz"),  # desim extension
    ("run_presets", "interfacebandwidth"),
    ("network_presets", "topologycsvloc"),  # v1: the topology, when -t is not given
}
# Settings that only say "this feature is off"; desim, lacking the feature, honours them.
INERT_WHEN = {
    ("architecture_presets", "memorybanks"): "1",
    ("run_presets", "useramulatortrace"): "false",
    ("sparsity", "sparsitysupport"): "false",
    ("layout", "ifmapcustomlayout"): "false",
    ("layout", "filtercustomlayout"): "false",
}
# Sections whose other keys only matter when their switch above is on.
SWITCHED_SECTIONS = {
    "sparsity": [("sparsity", "sparsitysupport")],
    "layout": [("layout", "ifmapcustomlayout"), ("layout", "filtercustomlayout")],
}
KNOWN_UNMODELLED = {
    ("architecture_presets", "ifmapoffset"),
    ("architecture_presets", "filteroffset"),
    ("architecture_presets", "ofmapoffset"),
    ("architecture_presets", "readrequestbuffer"),
    ("architecture_presets", "writerequestbuffer"),
}

SRAM_KEYS = {
    "ifmap": ("IfmapSramSzkB", "IfmapSramSz"),
    "filter": ("FilterSramSzkB", "FilterSramSz"),
    "ofmap": ("OfmapSramSzkB", "OfmapSramSz"),
}
PARAM_KEYS = {
    "array.rows": "ArrayHeight",
    "array.cols": "ArrayWidth",
    "array.dataflow": "Dataflow",
    "dram.bandwidth_bytes_per_cycle": "Bandwidth",
    "word_bytes": "WordBytes",
    "clock_mhz": "ClockMHz",
}
"""Where in ``[architecture_presets]`` the standard system's parameters come from, for error lines."""


@dataclass(frozen=True)
class ScaleSimConfig:
    """What a SCALE-Sim config sets, in desim's terms."""

    run_name: str
    rows: int
    cols: int
    dataflow: str
    sram_bytes: dict[str, int]
    bandwidth_bytes_per_cycle: float
    word_bytes: int
    topology: str | None
    source: str
    clock_mhz: float = 1000.0

    def system(self) -> System:
        """The standard system: array, three scratchpads, a bus and one DRAM."""
        return standard_system(
            rows=self.rows,
            cols=self.cols,
            dataflow=self.dataflow,
            sram_bytes=self.sram_bytes,
            bandwidth_bytes_per_cycle=self.bandwidth_bytes_per_cycle,
            word_bytes=self.word_bytes,
            clock_mhz=self.clock_mhz,
            name=self.run_name,
            source=self.source,
        )


def standard_system(
    *,
    rows: int,
    cols: int,
    dataflow: str,
    sram_bytes: dict[str, int],
    bandwidth_bytes_per_cycle: float = math.inf,
    word_bytes: int = 1,
    accumulator_bytes: int = 0,
    clock_mhz: float = 1000.0,
    name: str = "desim_run",
    source: str | None = None,
) -> System:
    """SCALE-Sim's system as a graph: ``array -> sram_<operand> -> bus -> dram``."""
    components = {
        "array": {"kind": "systolic_array", "rows": rows, "cols": cols, "dataflow": dataflow},
        "bus": {"kind": "bus"},
        "dram": {"kind": "dram", "bandwidth_bytes_per_cycle": bandwidth_bytes_per_cycle},
    }
    links = []
    for operand, capacity in sram_bytes.items():
        components[f"sram_{operand}"] = {"kind": "scratchpad", "operand": operand, "capacity_bytes": capacity}
        links.append({"from": f"array.{operand}", "to": f"sram_{operand}.compute"})
        links.append({"from": f"sram_{operand}.memory", "to": "bus.clients"})
    links.append({"from": "bus.memory", "to": "dram.clients"})
    return System.build(
        components,
        links,
        name=name,
        word_bytes=word_bytes,
        accumulator_bytes=accumulator_bytes,
        clock_mhz=clock_mhz,
        source=source,
    )


def read_scalesim_cfg(path: str | Path) -> ScaleSimConfig:
    """Parse a SCALE-Sim config; DesimError names the file, line and key of any mistake."""
    text = read_text(path, "config file")
    parser = configparser.ConfigParser(
        delimiters=(":", "="), interpolation=None, strict=True, inline_comment_prefixes=("#", ";")
    )
    try:
        parser.read_string(text, source=str(path))
    except configparser.MissingSectionHeaderError as error:
        raise DesimError("expected a [section] header before the first key", file=path, line=error.lineno) from None
    except (configparser.DuplicateOptionError, configparser.DuplicateSectionError) as error:
        raise DesimError(error.message.split(": ", 1)[-1], file=path, line=error.lineno) from None
    except configparser.ParsingError as error:
        line = error.errors[0][0] if error.errors else None
        raise DesimError("cannot parse this line (expected 'key: value')", file=path, line=line) from None
    reader = _Reader(parser, path, text)

    run_name = reader.get("general", "run_name").strip().strip("\"'")
    problem = run_name_problem(run_name)
    if problem:
        reader.fail("general", "run_name", f"{run_name!r} {problem}")
    rows = reader.number("architecture_presets", "ArrayHeight", int)
    cols = reader.number("architecture_presets", "ArrayWidth", int)
    dataflow = reader.get("architecture_presets", "Dataflow").strip().lower()
    if dataflow not in ("os", "ws", "is"):
        reader.fail("architecture_presets", "Dataflow", f"unknown dataflow {dataflow!r}; expected os, ws or is")
    sram_bytes = {}
    for operand in SRAM_KEYS:
        chosen = _sram_key(operand, reader)
        kilobytes = reader.number("architecture_presets", chosen, float)
        if not 2 / 1024 <= kilobytes <= MAX_NUMBER / 1024:
            reader.fail(
                "architecture_presets",
                chosen,
                f"{kilobytes:g} kB is out of range; an SRAM holds from 2 bytes to 2^53 bytes "
                f"({MAX_NUMBER // 1024:,} kB)",
            )
        sram_bytes[operand] = int(kilobytes * 1024)
    word_bytes = (
        reader.number("architecture_presets", "WordBytes", int)
        if reader.has("architecture_presets", "WordBytes")
        else 1
    )
    clock_mhz = (
        reader.number("architecture_presets", "ClockMHz", float)
        if reader.has("architecture_presets", "ClockMHz")
        else 1000.0
    )

    mode = "CALC"
    if parser.has_section("run_presets"):  # v1 files have none: their cycles assume ideal memory
        mode = reader.get("run_presets", "InterfaceBandwidth").strip().upper()
        if mode not in ("CALC", "USER"):
            reader.fail("run_presets", "InterfaceBandwidth", f"expected CALC or USER, got {mode!r}")
    bandwidth = math.inf
    if mode == "USER":
        words = [parse_float(part) for part in reader.get("architecture_presets", "Bandwidth").split(",")]
        if any(value is None or not 0 < value < math.inf for value in words):
            reader.fail(
                "architecture_presets",
                "Bandwidth",
                "expected a positive number of words per cycle (or one per memory bank, comma-separated)",
            )
        bandwidth = sum(words) * word_bytes
        if not MIN_BANDWIDTH <= bandwidth <= MAX_NUMBER:  # USER mode means a finite bandwidth, never ideal
            reader.fail(
                "architecture_presets",
                "Bandwidth",
                f"{sum(words):g} words/cycle x {word_bytes} bytes is {bandwidth:g} bytes/cycle; expected from "
                f"{MIN_BANDWIDTH:g} to {show_number(MAX_NUMBER)} bytes/cycle",
            )

    topology = None
    if reader.has("network_presets", "TopologyCsvLoc"):
        topology = reader.get("network_presets", "TopologyCsvLoc").strip().strip("\"'")
        if not topology:  # silently running the default topology instead would mislead
            reader.fail("network_presets", "TopologyCsvLoc", "is empty; name a topology file or remove the key")

    reader.warn_about_ignored(bandwidth_used=mode == "USER")
    config = ScaleSimConfig(
        run_name, rows, cols, dataflow, sram_bytes, bandwidth, word_bytes, topology, str(path), clock_mhz
    )
    try:
        config.system().validate()
    except DesimError as error:  # a value the components refuse: point at the key that set it
        key = error.key or ""
        operand = key.removeprefix("sram_").removesuffix(".capacity_bytes")
        spelled = PARAM_KEYS.get(key) or (
            _sram_key(operand, reader) if f"sram_{operand}.capacity_bytes" == key else None
        )
        if spelled is None:
            raise
        reader.fail("architecture_presets", spelled, error.message)
    return config


def _sram_key(operand: str, reader: _Reader) -> str:
    """The key that sizes an operand's SRAM: the v2 spelling unless only the v1 one is there."""
    key, v1_key = SRAM_KEYS[operand]
    return key if reader.has("architecture_presets", key) or not reader.has("architecture_presets", v1_key) else v1_key


class _Reader:
    """Looks keys up case-insensitively and reports mistakes with their line."""

    def __init__(self, parser: configparser.ConfigParser, path: str | Path, text: str) -> None:
        self.parser = parser
        self.path = path
        self.lines, self.spellings = _key_lines(text)

    def has(self, section: str, key: str) -> bool:
        return self.parser.has_option(section, key)

    def get(self, section: str, key: str) -> str:
        if not self.parser.has_section(section):
            raise DesimError(f"missing section [{section}] (it must hold {key})", file=self.path)
        if not self.parser.has_option(section, key):
            raise DesimError(f"missing key in [{section}]", file=self.path, key=key)
        return self.parser.get(section, key)

    def number(self, section: str, key: str, kind: type) -> int | float:
        value = _positive(self.get(section, key), kind)
        if value is None:
            what = "a positive integer" if kind is int else "a positive number"
            self.fail(section, key, f"expected {what} up to 2^53, got {brief(self.parser.get(section, key))}")
        return value

    def fail(self, section: str, key: str, message: str) -> NoReturn:
        raise DesimError(message, file=self.path, line=self.lines.get((section, key.lower())), key=key)

    def warn_about_ignored(self, *, bandwidth_used: bool) -> None:
        unmodelled: dict[str, list[str]] = {}
        unknown: dict[str, list[str]] = {}
        for section in self.parser.sections():
            switches = SWITCHED_SECTIONS.get(section, [])
            switched_off = all(self.parser.get(*s, fallback="false").strip().lower() == "false" for s in switches)
            for key, value in self.parser.items(section):
                where = (section, key)
                if where in MODELLED:
                    continue
                if where == ("architecture_presets", "bandwidth") and not bandwidth_used:
                    continue
                inert = INERT_WHEN.get(where)
                if inert is not None and value.strip().lower() == inert:
                    continue
                if switches and switched_off and where not in INERT_WHEN:
                    continue
                known = where in KNOWN_UNMODELLED or where in INERT_WHEN or section in SWITCHED_SECTIONS
                (unmodelled if known else unknown).setdefault(section, []).append(self._spelling(section, key))
        parts = []
        for title, found in (("keys desim does not model yet", unmodelled), ("keys desim does not know", unknown)):
            if found:
                parts.append(f"{title}: " + "; ".join(f"[{sec}] {', '.join(keys)}" for sec, keys in found.items()))
        if parts:
            warnings.warn(DesimWarning(f"{self.path}: ignored " + "; ".join(parts)), stacklevel=3)

    def _spelling(self, section: str, key: str) -> str:
        return self.spellings.get((section, key), key)


def _key_lines(text: str) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], str]]:
    """Each key's line number and spelling as written, by section and lower-cased key."""
    lines: dict[tuple[str, str], int] = {}
    spellings: dict[tuple[str, str], str] = {}
    section = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"\s*\[([^\]]+)\]", line)
        if header:
            section = header.group(1).strip()
            continue
        entry = re.match(r"\s*([^#;:=\s][^:=]*?)\s*[:=]", line)
        if entry and section is not None:
            key = entry.group(1)
            lines[(section, key.lower())] = number
            spellings[(section, key.lower())] = key
    return lines, spellings


def _positive(text: str, kind: type) -> int | float | None:
    """``text`` as a positive, finite ``kind`` written plainly (``1_0`` and ``nan`` are not numbers), or None."""
    value = parse_int(text) if kind is int else parse_float(text)
    return value if value is not None and 0 < value <= MAX_NUMBER else None
