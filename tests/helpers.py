"""Shared test helpers: the golden SCALE-Sim data, a standard system builder, a layer runner."""

from __future__ import annotations

import csv
import itertools
import math
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from desim.io.scalesim_cfg import standard_system
from desim.simulation import LayerResult, Simulation
from desim.system import System
from desim.workload import Layer

DATA = Path(__file__).parent / "data"
REFERENCE = DATA / "scalesim-2.0.2"
ROOT = Path(__file__).parents[1]
CASES = sorted(p.name for p in REFERENCE.iterdir() if p.is_dir())


def read_report(path: Path) -> list[dict[str, str]]:
    """A SCALE-Sim style CSV (", " separators, trailing commas) as dicts keyed by column name."""
    with path.open() as handle:
        rows = list(csv.reader(handle, skipinitialspace=True))
    header = [name for name in rows[0] if name]
    return [dict(zip(header, row[: len(header)], strict=True)) for row in rows[1:] if row]


def system(
    rows: int = 32,
    cols: int = 32,
    dataflow: str = "ws",
    sram_bytes: int | dict[str, int] = 64 * 1024,
    bandwidth: float = math.inf,
    word_bytes: int = 1,
    accumulator_bytes: int = 0,
    mapper: str = "scalesim",
    mapping: dict | None = None,
) -> System:
    """The standard SCALE-Sim system with the given knobs (and the array's mapper)."""
    sizes = sram_bytes if isinstance(sram_bytes, dict) else dict.fromkeys(("ifmap", "filter", "ofmap"), sram_bytes)
    built = standard_system(
        rows=rows,
        cols=cols,
        dataflow=dataflow,
        sram_bytes=sizes,
        bandwidth_bytes_per_cycle=bandwidth,
        word_bytes=word_bytes,
        accumulator_bytes=accumulator_bytes,
    )
    built = built.with_param("array", "mapper", mapper) if mapper != "scalesim" else built
    return built.with_param("array", "mapping", mapping) if mapping else built


def run(sys_: System, layers: list[Layer]) -> list[LayerResult]:
    """Simulate ``layers``; every result's stall ledger is checked to add up (contract 4)."""
    results = list(Simulation(sys_).run(layers))
    arrays = [
        name.removesuffix(".stall_cause_cycles") for name in results[0].stats if name.endswith(".stall_cause_cycles")
    ]
    for result in results:
        for array in arrays:
            check_ledger(result.stats, array)
    return results


def check_ledger(stats: dict, array: str = "array") -> None:
    """Stalls split by operand and by cause each sum to the stall cycles, which close total - compute."""
    stall = stats[f"{array}.stall_cycles"]
    by_operand = sum(stats[f"{array}.stall_{op}_cycles"] for op in ("ifmap", "filter", "ofmap"))
    by_cause = stats[f"{array}.stall_cause_cycles"]
    assert by_operand == stall == sum(by_cause.values()), (stall, by_operand, by_cause)
    assert all(cycles >= 0 for cycles in by_cause.values()), by_cause
    assert stats[f"{array}.compute_cycles"] + stall == stats[f"{array}.total_cycles"]


def check_stall_report(path: Path) -> None:
    """Every row of a STALL_REPORT.csv: operand columns and cause columns each sum to Stall Cycles."""
    for row in read_report(path):
        names = list(row)
        operands = names[names.index("Stall Cycles") + 1 : names.index("OFMAP Stall Cycles") + 1]
        places = names[names.index("OFMAP Stall Cycles") + 1 :]
        stall = int(row["Stall Cycles"])
        assert sum(int(row[name]) for name in operands) == stall, row
        assert sum(int(row[name]) for name in places) == stall, row
        assert int(row["Compute Cycles"]) + stall == int(row["Total Cycles"]), row


def input_elements(layer: Layer, m: range, k: range) -> set[int]:
    """The input elements (channel-fastest ``H x W x C`` indices) im2col rows ``m`` and columns
    ``k`` read, by brute force: window positions past the input's edge read nothing."""
    found = set()
    for row, col in itertools.product(m, k):
        eh, ew = divmod(row, layer.ofmap_width)
        r, rest = divmod(col, layer.filter_width * layer.channels)
        s, c = divmod(rest, layer.channels)
        h, w = eh * layer.stride_height + r, ew * layer.stride_width + s
        if h < layer.ifmap_height and w < layer.ifmap_width:
            found.add((h * layer.ifmap_width + w) * layer.channels + c)
    return found


def advertise(
    site: Path, monkeypatch, group: str, entry: str, module: str, forget: Callable[[], None]
) -> Iterator[None]:
    """A plug-in as pip would leave it: ``tests/plugins/<module>.py`` importable and ``entry``
    (``name = module:Class``) advertised in entry-point ``group``; ``forget()`` clears the cache
    of what was loaded, before and after. For a pytest fixture to ``yield from``."""
    info = site / f"desim_{module}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: desim-{module}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{entry}\n")
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "plugins"))
    monkeypatch.syspath_prepend(str(site))
    forget()
    yield
    forget()
    sys.modules.pop(module, None)


def reference_rows() -> list[tuple[str, str, int, int | None, float, float | None]]:
    """DRAMsim3's reference table (``tests/data/dramsim3/README.md``), a row each: ``(device,
    stream, requests, max in flight, GB/s, read latency ns)``."""
    rows = []
    for line in (DATA / "dramsim3" / "README.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 6 or not re.fullmatch(r"[0-9,]+", cells[2]):
            continue
        device_name, stream, requests, limit, gbps, latency = cells
        rows.append((
            device_name,
            stream,
            int(requests.replace(",", "")),
            None if limit == "unlimited" else int(limit),
            float(gbps),
            None if latency == "-" else float(latency),
        ))  # fmt: skip
    return rows


def reference_stream(pattern: str, requests: int) -> list[tuple[int, bool]]:
    """DRAMsim3's reference stream ``pattern`` (64-byte requests): ``(address, is_write)`` each."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("streams", ROOT / "tests" / "data" / "dramsim3" / "streams.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    addresses, writes = module.stream(pattern, requests, 64)
    return list(zip(addresses.tolist(), writes.tolist(), strict=True))
