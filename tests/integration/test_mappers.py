"""The mappers on whole networks: partial sums stay on chip, stalls fall, traffic never grows."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import ROOT, advertise, run, system

from desim.cli import main
from desim.components.compute.mappers import Mapper, Problem, choose, mappers
from desim.errors import DesimError
from desim.io.topology import read_topology
from desim.registry import installed_mappers
from desim.workload import Layer, Share

DRAM10 = ROOT / "configs" / "scale_dram10.yaml"
ALEXNET = ROOT / "topologies" / "conv" / "alexnet.csv"
RESNET50 = ROOT / "topologies" / "conv" / "resnet50.csv"


def layer_stats(tmp_path: Path, *args: str) -> list[dict]:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "-q", "-p", str(out), *args])
    assert result.exit_code == 0, result.output
    (stats,) = out.glob("*/LAYER_STATS.jsonl")
    return [json.loads(line) for line in stats.read_text().splitlines()]


@pytest.mark.parametrize("topology", [ALEXNET, RESNET50])
def test_psum_resident_sends_no_partial_sum_to_dram_and_cuts_alexnets_stalls(topology, tmp_path):
    given = ["-a", str(DRAM10), "-t", str(topology)]
    layers = {m: layer_stats(tmp_path / m, *given, "--mapper", m) for m in ("scalesim", "psum-resident")}
    # scale_dram10: 32 columns, 64 KB OFMAP buffer staging half, 1-byte partial sums: a one-row
    # output tile (32 partial sums) fits every layer, so no layer may move a partial sum to DRAM.
    spilled_before = 0
    for before, after in zip(layers["scalesim"], layers["psum-resident"], strict=True):
        s = after["stats"]
        assert s["array.chosen_mapping"]["mapper"] == "psum-resident"
        assert s["dram.tensor_write_bytes"].get("psum", 0) == 0, after["name"]
        assert s["dram.tensor_read_bytes"].get("psum", 0) == 0, after["name"]
        assert s["array.planned_traffic"]["ofmap"]["psum_write_bytes"] == 0
        spilled_before += before["stats"]["dram.tensor_write_bytes"].get("psum", 0)
    assert spilled_before > 0  # the SCALE-Sim order did spill
    stall = {m: sum(layer["stats"]["array.stall_cycles"] for layer in found) for m, found in layers.items()}
    if topology == ALEXNET:  # measured: 1,514,306 -> 867,884 cycles, 42.7% fewer
        assert stall["psum-resident"] <= 0.65 * stall["scalesim"]


def dram_bytes(layers: list[Layer], mapper: str, input_type: str) -> list[int]:
    results = run(system(mapper=mapper), layers)
    return [r.stats["dram.read_bytes"] + r.stats["dram.write_bytes"] for r in results]


@pytest.mark.parametrize(
    ("topology", "input_type"),
    [
        (ALEXNET, "conv"),
        (RESNET50, "conv"),
        (ROOT / "topologies" / "gemm" / "transformer_block.csv", "gemm"),
        (ROOT / "topologies" / "gemm" / "vit_s.csv", "gemm"),
    ],
)
def test_min_traffic_never_moves_more_than_scalesim_or_psum_resident(topology, input_type):
    layers = read_topology(topology, input_type)
    moved = {m: dram_bytes(layers, m, input_type) for m in ("scalesim", "psum-resident", "min-traffic")}
    for i, layer in enumerate(layers):
        assert moved["min-traffic"][i] <= moved["scalesim"][i], layer.name
        assert moved["min-traffic"][i] <= moved["psum-resident"][i], layer.name
    if input_type == "conv":  # where SCALE-Sim's order spills partial sums, there is something to win
        assert sum(moved["min-traffic"]) < sum(moved["scalesim"])


def test_partial_sums_move_at_the_accumulators_width():
    conv1 = read_topology(ALEXNET, "conv")[:1]
    psums = {}
    for acc in (1, 4):
        (result,) = run(system(accumulator_bytes=acc), conv1)
        s = result.stats
        psums[acc] = s["dram.tensor_write_bytes"]["psum"] + s["dram.tensor_read_bytes"]["psum"]
        assert s["dram.tensor_write_bytes"]["ofmap"] == 55 * 55 * 96  # outputs at the word's width
    assert psums[1] > 0 and psums[4] == 4 * psums[1]


def test_explicit_mappings_per_layer_run_as_written(tmp_path):
    arch = tmp_path / "explicit.yaml"
    arch.write_text(
        DRAM10.read_text().replace(
            "dataflow: ws}",
            'dataflow: ws, mapper: explicit, mapping: {Conv1: {order: NMK, M: 605}, "*": {order: NKM}}}',
        )
    )
    layers = layer_stats(tmp_path, "-a", str(arch), "-t", str(ALEXNET), "--show-mapping")
    first, second = (layer["stats"]["array.chosen_mapping"] for layer in layers[:2])
    assert (first["order"], first["fold"]) == ("NMK", {"M": 605, "N": 32, "K": 32})
    assert first["folds"] == 5 * 3 * 12  # 3025 outputs in tiles of 605, 96 filters, K = 363
    assert first["ofmap"]["psums"] == "kept"
    assert (second["order"], second["fold"]["M"]) == ("NKM", 23 * 23)  # SCALE-Sim's order: all of M
    assert second["ofmap"]["psums"] == "kept"  # 529 x 32 partial sums fit half of 64 KB


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ("{order: NKM}", "(Conv1) on array: its explicit mapping (order NKM, M tiles of 3025) keeps more partial"),
        ("{order: NMKX}", "array.mapping.order: expected the loop order as M, N and K each once"),
        ("{order: NMK, N: 16}", "bad.yaml:9: array.mapping.N: N lies on the array's columns with the ws dataflow"),
        ("{M: 0}", "array.mapping.M: expected a tile size from 1 to 2^53, got 0"),
        ("{M: 99999999999999999999}", "array.mapping.M: expected a tile size from 1 to 2^53, got 99999999999999999999"),
        ("{Conv9: {order: NMK}}", "on array: its mapping param has no entry for layer 'Conv1' (nor '*' for"),
        (
            "{Conv9: {order: NMK}, '*': {psums: spill}}",
            "alexnet.csv: array.mapping.Conv9: names no layer of this workload",
        ),
        (
            "{order: NMK, tile: 3}",
            "array.mapping.tile: unknown key 'tile' (expected order, M, N, K, psums, storage_tiles)",
        ),
        ("{Conv1: {order: NMK}, Conv2: [1, 2]}", "array.mapping.Conv2: expected a mapping like {order: NMK, M: 256}"),
        ("{order: NMK, psums: maybe}", "array.mapping.psums: expected one of keep, spill"),
    ],
)
def test_a_mapping_that_cannot_be_run_is_refused_before_time_starts(mapping, message, tmp_path):
    arch = tmp_path / "bad.yaml"
    arch.write_text(
        DRAM10.read_text().replace("dataflow: ws}", f"dataflow: ws, mapper: explicit, mapping: {mapping}}}")
    )
    result = CliRunner().invoke(main, ["run", "-q", "-a", str(arch), "-t", str(ALEXNET), "-p", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "o").exists()


def test_an_unknown_mapper_is_named_with_the_known_ones(tmp_path):
    result = CliRunner().invoke(main, ["run", "-q", "--mapper", "fastest", "-t", str(ALEXNET), "-p", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output == (
        "desim: error: --mapper: unknown mapper 'fastest' (known: explicit, min-traffic, psum-resident, scalesim)\n"
    )
    arch = tmp_path / "arch.yaml"
    arch.write_text(DRAM10.read_text().replace("dataflow: ws}", "dataflow: ws, mapper: fastest}"))
    result = CliRunner().invoke(main, ["run", "-q", "-a", str(arch), "-t", str(ALEXNET), "-p", str(tmp_path)])
    assert result.exit_code == 2
    assert "arch.yaml:9: array.mapper: unknown mapper 'fastest' (known: explicit," in result.output


def test_a_mapping_the_mapper_does_not_read_is_ignored_with_a_warning_so_sweeps_can_compare(tmp_path):
    arch = tmp_path / "arch.yaml"
    arch.write_text(DRAM10.read_text().replace("dataflow: ws}", "dataflow: ws, mapping: {order: NMK, M: 605}}"))
    given = ["-a", str(arch), "-t", str(ALEXNET)]
    ran = CliRunner().invoke(main, ["run", "-q", "-p", str(tmp_path / "o"), *given])
    assert ran.exit_code == 0, ran.output
    warning = "desim: warning: array.mapping: the scalesim mapper takes no mapping, so it is ignored"
    assert ran.output.count(warning) == 1  # once, though the system is checked twice
    swept = CliRunner().invoke(main, ["sweep", *given, "--vary", "array.mapper=scalesim,explicit"])
    assert swept.exit_code == 0, swept.output
    rows = {
        line.split()[0]: int(line.split()[1])
        for line in swept.output.splitlines()
        if line.split()[0] in ("scalesim", "explicit")
    }
    assert rows["explicit"] < rows["scalesim"]
    both = CliRunner().invoke(main, ["sweep", *given, "--mapper", "explicit", "--vary", "array.mapper=scalesim"])
    assert both.exit_code == 2
    assert "--mapper and --vary array.mapper=... both choose the mapper" in both.output


def test_show_mapping_prints_each_layers_mapping_and_the_sweep_compares_mappers(tmp_path):
    given = ["-a", str(DRAM10), "-t", str(ALEXNET)]
    shown = CliRunner().invoke(
        main, ["run", "-q", "--show-mapping", "--mapper", "psum-resident", "-p", str(tmp_path), *given]
    )
    assert shown.exit_code == 0, shown.output
    lines = [line for line in shown.output.splitlines() if " on array: psum-resident" in line]
    assert [line.split()[0] for line in lines] == ["Conv1", "Conv2", "Conv3", "Conv4", "Conv5"]
    assert all("partial sums kept" in line and "0 B of it partial sums" in line for line in lines)
    swept = CliRunner().invoke(main, ["sweep", *given, "--vary", "array.mapper=scalesim,psum-resident"])
    assert swept.exit_code == 0, swept.output
    rows = {line.split()[0]: line.split() for line in swept.output.splitlines()[1:]}
    assert int(rows["psum-resident"][3]) < int(rows["scalesim"][3])  # DRAM bytes


@pytest.fixture
def installed(tmp_path, monkeypatch):
    yield from advertise(
        tmp_path / "site",
        monkeypatch,
        "desim.mappers",
        "filter-first = filter_first:FilterFirst",
        "filter_first",
        installed_mappers.cache_clear,
    )


def test_a_mapper_from_outside_plugs_in_by_its_entry_point(installed, tmp_path):
    assert "filter-first" in mappers()
    layers = layer_stats(tmp_path, "-a", str(DRAM10), "-t", str(ALEXNET), "--mapper", "filter-first")
    for layer in layers:
        s = layer["stats"]
        assert s["array.chosen_mapping"]["mapper"] == "filter-first"
        traffic = s["array.planned_traffic"]["filter"]
        assert traffic["read_bytes"] == traffic["distinct_bytes"]  # AlexNet's filters can each be read once


def test_a_mapper_that_returns_no_mapping_is_named():
    class Broken(Mapper):
        name = "broken"

        def map(self, problem):
            return None

    class Elsewhere(Mapper):
        name = "elsewhere"

        def map(self, problem):
            return replace(problem.mapping(), rows=problem.rows + 1)

    problem = Problem(Layer.gemm("g", 4, 4, 4), Share.whole(Layer.gemm("g", 4, 4, 4)), 2, 2, "ws", 1, 1, {})
    with pytest.raises(DesimError, match="the broken mapper returned None, not a Mapping"):
        choose(Broken(), problem)
    with pytest.raises(DesimError, match="the elsewhere mapper returned a mapping of another problem"):
        choose(Elsewhere(), problem)


def test_buffers_must_hold_an_edge_of_partial_sums_at_their_width():
    # A 4x4 array passes 4 elements a cycle; double-buffered, at 4-byte partial sums: 32 bytes each.
    system(rows=4, cols=4, sram_bytes=32, accumulator_bytes=4).validate()
    with pytest.raises(DesimError, match="31 bytes cannot double-buffer a 4-element edge of the 4x4 array at 4 bytes"):
        system(rows=4, cols=4, sram_bytes=31, accumulator_bytes=4).validate()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("broken = filter_first:Nowhere", "cannot load mapper 'broken' from filter_first:Nowhere"),
        ("problem = filter_first:Problem", "entry point 'problem' must load a Mapper subclass whose name is 'problem'"),
    ],
)
def test_a_broken_mapper_plugin_is_named(tmp_path, monkeypatch, entry, message):
    fixture = advertise(
        tmp_path / "site", monkeypatch, "desim.mappers", entry, "filter_first", installed_mappers.cache_clear
    )
    next(fixture)
    try:
        result = CliRunner().invoke(main, ["run", "-q", "-t", str(ALEXNET), "-p", str(tmp_path / "o")])
        assert result.exit_code == 2, result.output
        assert message in result.output
    finally:
        next(fixture, None)
