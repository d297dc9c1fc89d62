"""``desim sweep``: one row per value, totals that follow the swept bandwidth, clean errors."""

import copy
import math

import pytest
from click.testing import CliRunner
from helpers import ROOT, run, system

from desim.cli import main
from desim.errors import DesimError
from desim.io.topology import read_topology
from desim.sweep import iter_sweep, parse_vary, sweep

CONV_HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
BANDWIDTHS = ("1", "4", "16", "64", "inf")


@pytest.fixture
def topology(tmp_path):
    """Two small conv layers: enough traffic to stall at low bandwidth, fast to simulate."""
    path = tmp_path / "tiny.csv"
    path.write_text(CONV_HEADER + "A, 10, 10, 3, 3, 16, 32, 1,\nB, 8, 8, 3, 3, 32, 64, 1,\n")
    return path


def invoke(*args):
    return CliRunner().invoke(main, ["sweep", *args])


def table(output):
    """The sweep's rows as lists of cells: value, cycles, stall share, DRAM bytes, cause [, (share)]."""
    lines = output.splitlines()
    assert lines[0].split()[0] == "dram.bandwidth_bytes_per_cycle"
    return [line.split() for line in lines[1:]]


def test_bandwidth_sweep_prints_a_row_per_value(topology):
    vary = "dram.bandwidth_bytes_per_cycle=" + ",".join(BANDWIDTHS)
    result = invoke("-c", str(ROOT / "configs" / "scale.cfg"), "-t", str(topology), "--vary", vary)
    assert result.exit_code == 0, result.output
    rows = table(result.output)
    assert [row[0] for row in rows] == list(BANDWIDTHS)
    cycles = [int(row[1]) for row in rows]
    assert cycles == sorted(cycles, reverse=True)
    assert cycles[0] > cycles[-1]  # 1 byte/cycle does stall
    assert rows[0][2] != "0.0%" and rows[0][4:6] == ["dram", "service"] and rows[0][6].endswith("%)")
    assert rows[-1][2] == "0.0%" and rows[-1][4:] == ["-"]  # ideal memory: no stalls, no cause
    assert len({row[3] for row in rows}) == 1  # the same bytes move at every bandwidth
    # Deterministic: the same sweep prints the same bytes.
    assert invoke("-c", str(ROOT / "configs" / "scale.cfg"), "-t", str(topology), "--vary", vary).output == (
        result.output
    )


def test_sweep_rows_match_single_runs(topology):
    layers = read_topology(topology)
    sys_ = system()
    rows = sweep(sys_, layers, "dram.bandwidth_bytes_per_cycle=2, inf", workload_source=str(topology))
    assert [(row.text, row.value) for row in rows] == [("2", 2.0), ("inf", math.inf)]
    for row, bandwidth in zip(rows, (2.0, math.inf), strict=True):
        results = run(system(bandwidth=bandwidth), layers)
        assert row.total_cycles == sum(r.stats["array.total_cycles"] for r in results)
        assert row.stall_cycles == sum(r.stats["array.stall_cycles"] for r in results)
        assert row.dram_bytes == sum(r.stats["dram.read_bytes"] + r.stats["dram.write_bytes"] for r in results)
        assert sum(row.stall_causes.values()) == row.stall_cycles
    slow, ideal = rows
    assert slow.stall_cycles > 0 and slow.dominant_cause in slow.stall_causes
    assert 0 < slow.dominant_cause_percent <= 100
    assert slow.stall_causes[slow.dominant_cause] == max(slow.stall_causes.values())
    assert (ideal.stall_cycles, ideal.stall_percent, ideal.dominant_cause) == (0, 0.0, None)


def test_a_sweep_never_changes_the_system_it_was_given(topology):
    """Each point runs on its own copy: the caller's system is the same before, during and after."""
    sys_ = system()
    before = copy.deepcopy(dict(sys_.graph.nodes(data=True)))
    rows = iter_sweep(sys_, read_topology(topology), parse_vary("dram.latency_cycles=0,7,30"))
    for row in rows:
        assert dict(sys_.graph.nodes(data=True)) == before, row.text
    assert dict(sys_.graph.nodes(data=True)) == before
    assert "latency_cycles" not in sys_.graph.nodes["dram"]["params"]


def test_yaml_architecture_sweeps_like_its_cfg_twin(topology):
    vary = "dram.bandwidth_bytes_per_cycle=8,inf"
    by_cfg = invoke("-c", str(ROOT / "configs" / "scale.cfg"), "-t", str(topology), "--vary", vary)
    by_yaml = invoke("-a", str(ROOT / "configs" / "scale.yaml"), "-t", str(topology), "--vary", vary)
    assert by_cfg.exit_code == by_yaml.exit_code == 0, by_cfg.output + by_yaml.output
    assert by_cfg.output == by_yaml.output


@pytest.mark.parametrize(
    ("vary", "message"),
    [
        ("dram.bandwidth_bytes_per_cycle", "--vary: expected NODE.PARAM=V1,V2,..., got "),
        ("bandwidth=1,2", "--vary: expected NODE.PARAM=V1,V2,..., got 'bandwidth=1,2'"),
        ("dram.bandwidth_bytes_per_cycle=", "--vary: no values given for dram.bandwidth_bytes_per_cycle"),
        ("dram.bandwidth_bytes_per_cycle=1,,2", "--vary: empty value in '1,,2'"),
        ("hbm.bandwidth_bytes_per_cycle=1", "--vary: no component named 'hbm' (components: array, bus, dram"),
        ("dram.speed=1", "dram.speed: unknown parameter for kind 'dram' (known: bandwidth_bytes_per_cycle"),
        (
            "dram.bandwidth_bytes_per_cycle=1,fast",
            "dram.bandwidth_bytes_per_cycle: expected a number from 0.001 to 2^53 (or inf)",
        ),
        (
            "dram.bandwidth_bytes_per_cycle=0",
            "dram.bandwidth_bytes_per_cycle: expected a number from 0.001 to 2^53 (or inf)",
        ),
        ("array.dataflow=ws,rs", "array.dataflow: expected one of 'os', 'ws', 'is', got 'rs'"),
        ("sram_ifmap.capacity_bytes=16", "sram_ifmap.capacity_bytes=16: 16 bytes cannot double-buffer"),
    ],
)
def test_bad_vary_exits_2_with_one_line(topology, vary, message):
    result = invoke("-t", str(topology), "--vary", vary)
    assert result.exit_code == 2
    assert result.stdout == ""  # nothing runs, not even the header, before every point is checked
    assert result.stderr.startswith("desim: error: " + message)
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.output


def test_parse_vary_strips_spaces():
    vary = parse_vary(" dram.bandwidth_bytes_per_cycle = 1, 2 ,inf ")
    assert (vary.key, vary.texts) == ("dram.bandwidth_bytes_per_cycle", ("1", "2", "inf"))
    with pytest.raises(DesimError) as caught:
        parse_vary("=1")
    assert caught.value.key == "--vary"
