"""Describing a system: the text listing (components, links, routes) and the PNG drawing."""

import re
import sys

import numpy as np
import pytest
from helpers import ROOT, read_report

from desim.describe import ROLE_COLOURS, describe_system, draw_system
from desim.errors import DesimError
from desim.io.arch_yaml import read_arch_yaml
from desim.io.scalesim_cfg import read_scalesim_cfg
from desim.system import System

SCALE_YAML = ROOT / "configs" / "scale.yaml"


def sections(text: str) -> dict[str, list[str]]:
    """The listing's sections by title; a component's wrapped parameter lines are joined to its own."""
    header, *blocks = text.split("\n\n")
    found = {"header": header.splitlines()}
    for block in blocks:
        title, *lines = block.splitlines()
        rows: list[str] = []
        for line in lines:
            if line.startswith("   ") and rows:
                rows[-1] += " " + line.strip()
            else:
                rows.append(line.strip())
        found[title.rstrip(":")] = rows
    return found


def by_first_word(rows: list[str]) -> dict[str, list[str]]:
    return {row.split()[0]: row.split()[1:] for row in rows}


def columns(rows: list[str]) -> dict[str, str]:
    """Two-column rows (separated by two or more spaces) as a mapping, in order."""
    return dict(re.split(r"\s{2,}", row, maxsplit=1) for row in rows)


def test_routes_show_the_hops_that_take_time_and_the_stall_columns_match_a_run(tmp_path):
    from click.testing import CliRunner

    from desim.cli import main

    arch = ROOT / "configs" / "hierarchy_l2.yaml"
    found = sections(describe_system(read_arch_yaml(arch)))
    routes = columns(found["routes"])
    # A scratchpad's requests cross the L2's port, and the L2's fetches the DRAM below it.
    assert routes["sram_ifmap.memory"] == "sram_ifmap -> l2 l2: 64 B/cycle, 4 cycles; dram: 16 B/cycle, 100 cycles"
    assert routes["l2.memory"] == "l2 -> dram dram: 16 B/cycle, 100 cycles"
    listed = " ".join(row.split("  ", 1)[-1].strip() for row in found["stall columns"]).split(", ")
    topology = tmp_path / "one.csv"
    topology.write_text("Layer, H, W, R, S, C, N, Stride,\nconv, 20, 20, 3, 3, 16, 32, 1,\n")
    result = CliRunner().invoke(main, ["run", "-q", "-a", str(arch), "-t", str(topology), "-p", str(tmp_path)])
    assert result.exit_code == 0, result.output
    header = list(read_report(tmp_path / "hierarchy_l2" / "STALL_REPORT.csv")[0])
    assert header[header.index("OFMAP Stall Cycles") + 1 :] == listed


def limited_system() -> System:
    """The standard system with one slow, late link between the IFMAP buffer and the bus."""
    components = {
        "array": {"kind": "systolic_array", "rows": 8, "cols": 8, "dataflow": "os"},
        "bus": {"kind": "bus"},
        "dram": {"kind": "dram", "bandwidth_bytes_per_cycle": 2.5},
    }
    links = [{"from": "bus.memory", "to": "dram.clients"}]
    for op in ("ifmap", "filter", "ofmap"):
        components[f"sram_{op}"] = {"kind": "scratchpad", "operand": op, "capacity_bytes": 1024}
        links.append({"from": f"array.{op}", "to": f"sram_{op}.compute"})
        links.append({"from": f"sram_{op}.memory", "to": "bus.clients"})
    links[2].update(bandwidth_bytes_per_cycle=8, latency_cycles=3)  # sram_ifmap.memory -> bus.clients
    return System.build(components, links, name="limited")


# -- the text listing ---------------------------------------------------------------------------


def test_the_yaml_architecture_is_listed_with_every_node_link_and_route():
    system = read_arch_yaml(SCALE_YAML)
    text = describe_system(system)
    found = sections(text)
    assert found["header"] == [
        "system scale_example_run_32x32_ws: 6 components, 7 links",
        "  word_bytes=1 accumulator_bytes=1 clock_mhz=1000 split=every inter_layer=cold",
    ]
    assert list(found) == ["header", "components", "links", "routes", "stall columns"]
    assert found["stall columns"] == ["array  sram_ifmap capacity, sram_filter capacity, sram_ofmap capacity"]

    components = by_first_word(found["components"])
    assert list(components) == list(system.graph.nodes)
    roles = {"array": "compute", "bus": "interconnect", "dram": "memory"}
    for node, data in system.graph.nodes(data=True):
        kind, role, *params = components[node]
        assert kind == data["kind"]
        assert role == roles.get(node, "buffer")
        # every given parameter is shown as written in the file
        for key, value in data["params"].items():
            assert f"{key}={'inf' if value == float('inf') else value}" in params
    # defaults the file leaves out are filled in
    assert {"buffering=double", "banks=1", "port_bytes_per_cycle=64"} <= set(components["sram_ifmap"])
    assert "scheduling=fr-fcfs" in components["dram"]

    assert columns(found["links"]) == {
        f"{src}.{a['src_port']} -> {dst}.{a['dst_port']}": "ideal" for src, dst, a in system.graph.edges(data=True)
    }
    routes = columns(found["routes"])
    assert routes["sram_ifmap.memory"] == "sram_ifmap -> bus -> dram"
    assert routes["array.ofmap"] == "array -> sram_ofmap"
    assert routes["bus.memory"] == "bus -> dram"
    assert set(routes) == {
        "array.ifmap",
        "array.filter",
        "array.ofmap",
        "sram_ifmap.memory",
        "sram_filter.memory",
        "sram_ofmap.memory",
        "bus.memory",
    }
    assert all(len(line) <= 120 for line in text.splitlines())
    assert describe_system(read_arch_yaml(SCALE_YAML)) == text


def test_a_scalesim_cfg_system_is_listed_in_desims_terms():
    text = describe_system(read_scalesim_cfg(ROOT / "configs" / "google.cfg").system())
    found = sections(text)
    assert found["header"] == [
        "system GoogleTPU_v1_os: 6 components, 7 links",
        "  word_bytes=1 accumulator_bytes=1 clock_mhz=1000 split=every inter_layer=cold",
    ]
    components = by_first_word(found["components"])
    assert components["array"][:5] == ["systolic_array", "compute", "rows=256", "cols=256", "dataflow=os"]
    assert "capacity_bytes=6291456" in components["sram_ifmap"]  # IfmapSramSzkB: 6144
    assert "bandwidth_bytes_per_cycle=10" in components["dram"]  # Bandwidth: 10 words of 1 byte
    assert columns(found["routes"])["sram_ofmap.memory"] == "sram_ofmap -> bus -> dram dram: 10 B/cycle"


def test_a_limited_link_shows_its_bandwidth_and_latency():
    found = sections(describe_system(limited_system()))
    links = columns(found["links"])
    assert links["sram_ifmap.memory -> bus.clients"] == "bw=8 B/cycle, latency=3 cycles"
    assert links["sram_filter.memory -> bus.clients"] == "ideal"
    assert "bandwidth_bytes_per_cycle=2.5" in by_first_word(found["components"])["dram"]


def test_an_invalid_system_is_refused_naming_the_port():
    system = limited_system()
    system.graph.remove_edge("array", "sram_ofmap")
    with pytest.raises(DesimError, match="is not connected") as error:
        describe_system(system)
    assert error.value.key == "array.ofmap"


# -- the drawing --------------------------------------------------------------------------------


def test_the_yaml_architecture_is_drawn_to_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.colors import to_rgb
    from matplotlib.image import imread

    path = tmp_path / "figures" / "scale.png"  # the folder does not exist yet
    assert draw_system(read_arch_yaml(SCALE_YAML), path) == path
    assert sorted(p.name for p in path.parent.iterdir()) == ["scale.png"]  # no temporary file left
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 10_000
    pixels = imread(path)[..., :3]
    height, width = pixels.shape[:2]
    assert 300 <= height <= 2000 and 600 <= width <= 3000
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10
    # every role's box is filled with its colour
    for role in ("compute", "buffer", "interconnect", "memory"):
        distance = np.abs(pixels - np.array(to_rgb(ROLE_COLOURS[role]))).max(axis=-1)
        assert (distance < 2 / 255).sum() > 1000, role


def test_a_bigger_system_gets_a_bigger_drawing(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    small = draw_system(read_arch_yaml(SCALE_YAML), tmp_path / "small.png")
    components = {"dram": {"kind": "dram"}}
    links = []
    for array in ("a", "b", "c"):
        components[array] = {"kind": "systolic_array", "rows": 8, "cols": 8, "dataflow": "ws"}
        for op in ("ifmap", "filter", "ofmap"):
            components[f"{array}_{op}"] = {"kind": "scratchpad", "operand": op, "capacity_bytes": 4096}
            links += [
                {"from": f"{array}.{op}", "to": f"{array}_{op}.compute"},
                {"from": f"{array}_{op}.memory", "to": "dram.clients", "latency_cycles": 4},
            ]
    big = draw_system(System.build(components, links, name="three_arrays"), tmp_path / "big.png")
    assert imread(big).shape[0] > 2 * imread(small).shape[0]


def test_drawing_under_a_regular_file_is_refused_naming_the_path(tmp_path):
    pytest.importorskip("matplotlib")
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    target = blocker / "scale.png"
    with pytest.raises(DesimError, match=r"cannot write the drawing: .*not_a_folder is a file, not a folder") as error:
        draw_system(read_arch_yaml(SCALE_YAML), target)
    assert error.value.file == str(target)


def test_drawing_without_matplotlib_names_the_extra(monkeypatch, tmp_path):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.lines", "matplotlib.patches", "matplotlib.textpath"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(DesimError, match=r"drawings need matplotlib: .*pip install -e '\.\[plot\]'"):
        draw_system(read_arch_yaml(SCALE_YAML), tmp_path / "scale.png")
    assert not (tmp_path / "scale.png").exists()
