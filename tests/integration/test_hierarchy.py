"""Storage levels that stack: scratchpads under a shared global buffer (L2) under a DRAM."""

import pytest
from helpers import ROOT, check_stall_report, read_report, run

from desim.components.compute.ifmap_footprint import distinct_inputs
from desim.errors import DesimError
from desim.io.arch_yaml import read_arch_yaml
from desim.sweep import sweep
from desim.workload import Layer

HIERARCHY = ROOT / "configs" / "hierarchy_l2.yaml"
# Small enough to run fast, big enough that 16 KiB scratchpads stream and re-read their tiles.
LAYERS = [
    Layer("conv", 40, 40, 3, 3, 32, 64, 1),
    Layer("strided", 45, 45, 5, 5, 16, 48, 2),
    Layer.gemm("gemm", 200, 96, 180),
]


def hierarchy(**l2):
    system = read_arch_yaml(HIERARCHY)
    for param, value in l2.items():
        system = system.with_param("l2", param, value)
    return system


@pytest.mark.parametrize("policy", ["planned", "lru"])
def test_an_l2_that_holds_the_layer_reads_each_tensor_from_dram_once(policy):
    results = run(hierarchy(capacity_bytes=1 << 24, line_bytes=1, policy=policy), LAYERS)
    for result in results:
        layer, s = result.layer, result.stats
        reads = s["dram.tensor_read_bytes"]
        assert reads["ifmap"] == distinct_inputs(layer, 0, layer.m, 0, layer.k)
        assert reads["filter"] == layer.k * layer.n
        assert "psum" not in reads  # spilled partial sums are read back from the L2
        assert sum(s["dram.tensor_write_bytes"].values()) == s["sram_ofmap.dram_write_bytes"]
        # The scratchpads stream and fetch more than that from the L2, which serves it all.
        fetched = s["sram_ifmap.dram_read_bytes"] + s["sram_filter.dram_read_bytes"]
        assert fetched > reads["ifmap"] + reads["filter"]
        assert s["l2.fill_bytes"] == s["dram.read_bytes"]
        assert s["l2.read_bytes"] == fetched + s["sram_ofmap.dram_read_bytes"]


def test_a_shrinking_l2_moves_more_to_and_from_dram_never_less():
    rows = sweep(hierarchy(), LAYERS, "l2.capacity_bytes=16777216,65536,16384,4096,1024")
    moved = [row.dram_bytes for row in rows]  # the DRAM's bytes only: the L2 is not a main memory
    assert moved == sorted(moved) and moved[-1] > moved[0]
    assert all(sum(row.stall_causes.values()) == row.stall_cycles for row in rows)


def test_lru_keeps_what_it_can_and_never_reads_less_than_the_distinct_bytes():
    layer = LAYERS[0]
    distinct = distinct_inputs(layer, 0, layer.m, 0, layer.k) + layer.k * layer.n
    reads = {}
    for capacity in (1 << 24, 1 << 13, 1 << 10):
        (result,) = run(hierarchy(capacity_bytes=capacity, policy="lru", line_bytes=1), [layer])
        s = result.stats
        reads[capacity] = s["dram.tensor_read_bytes"]["ifmap"] + s["dram.tensor_read_bytes"]["filter"]
        assert s["l2.peak_occupancy_bytes"] <= capacity
    assert reads[1 << 24] == distinct < reads[1 << 13] <= reads[1 << 10]


def test_stalls_behind_l2_misses_are_charged_to_the_dram_and_to_the_l2(tmp_path):
    from click.testing import CliRunner

    from desim.cli import main

    topology = tmp_path / "layers.csv"
    topology.write_text(
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
        "conv, 40, 40, 3, 3, 32, 64, 1,\nstrided, 45, 45, 5, 5, 16, 48, 2,\n"
    )
    result = CliRunner().invoke(main, ["run", "-q", "-a", str(HIERARCHY), "-t", str(topology), "-p", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = tmp_path / "hierarchy_l2" / "STALL_REPORT.csv"
    check_stall_report(report)
    rows = read_report(report)
    columns = list(rows[0])
    assert {"l2 queue", "l2 service", "l2 latency", "dram queue", "dram service", "dram latency"} <= set(columns)
    charged = {label: sum(int(row[label]) for row in rows) for label in columns if label.startswith(("l2 ", "dram "))}
    assert charged["l2 service"] > 0 and charged["dram latency"] > 0
    assert not any(label.endswith("capacity") and "l2" in label for label in columns)


def test_a_tensor_too_large_to_track_line_by_line_is_refused_before_time_starts():
    from desim.simulation import Simulation

    system = hierarchy(capacity_bytes=1 << 40, line_bytes=1, policy="lru")
    huge = Layer("huge", 4000, 4000, 3, 3, 8, 8, 1)  # an IFMAP of 128,000,000 bytes
    with pytest.raises(DesimError, match="tracks at most 67,108,864 per tensor") as raised:
        Simulation(system).check([huge])
    assert raised.value.key == "layer 0 (huge) on l2"
    Simulation(hierarchy(capacity_bytes=1 << 40, line_bytes=2, policy="lru")).check([huge])  # 64,000,000 lines


LOOPS = {
    "an L2 whose misses come back to it": (
        "  - {from: l2.memory, to: l2.clients}",
        "  - {from: l2.memory",
        "l2.memory: requests would go round in a loop (l2 -> l2); every route must end at a memory that serves it",
    ),
    "an L2 with no link below it": (
        "",
        "  l2:",
        "l2.memory: is not connected (it needs a link to Memory)",
    ),
    "an L2 linked down to a scratchpad": (
        "  - {from: l2.memory, to: sram_ofmap.compute}",
        "  - {from: l2.memory",
        "l2.memory: links to 'sram_ofmap' (kind 'scratchpad'), but needs Memory",
    ),
}


@pytest.mark.parametrize("case", LOOPS)
def test_a_broken_hierarchy_names_the_link_at_fault_not_its_symptom(case, tmp_path):
    """Found by review: these once recursed without end (exit 70) or blamed the DRAM's idle port."""
    link, at, message = LOOPS[case]
    text = (ROOT / "configs" / "hierarchy_l2.yaml").read_text()
    # A second L2 keeps the DRAM linked, so only the broken link can be at fault.
    text = text.replace("  dram:", "  feed:        {kind: global_buffer}\n  dram:")
    text = text.replace(
        "  - {from: l2.memory, to: dram.clients}", f"{link}\n  - {{from: feed.memory, to: dram.clients}}"
    )
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(DesimError) as raised:
        read_arch_yaml(path)
    line = next(number for number, row in enumerate(text.splitlines(), 1) if row.startswith(at))
    assert str(raised.value) == f"{path}:{line}: {message}"
