"""The README's promises: its component example works as printed, its config example parses."""

import json
import re

from helpers import ROOT

from desim.io.scalesim_cfg import read_scalesim_cfg
from desim.registry import Registry, default_registry
from desim.simulation import Simulation
from desim.system import System
from desim.trace import Trace
from desim.workload import Layer

README = (ROOT / "README.md").read_text()


def block(after: str, language: str) -> str:
    section = README[README.index(after) :]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


def test_the_cfg_example_parses_with_its_comments(tmp_path):
    path = tmp_path / "readme.cfg"
    path.write_text(block("### SCALE-Sim `.cfg`", "ini"))
    cfg = read_scalesim_cfg(path)
    assert (cfg.dataflow, cfg.rows) == ("ws", 32)


def split_bus_system() -> System:
    """The standard system with the README's SplitBus as its bus."""
    namespace: dict = {}
    exec(compile(block("## Adding a component", "python"), "README.md", "exec"), namespace)
    split_bus = namespace["SplitBus"]
    registry = Registry()
    for kind in default_registry().kinds():
        registry.register(default_registry().get(kind))
    registry.register(split_bus)
    ops = ("ifmap", "filter", "ofmap")
    components = {
        "array": {"kind": "systolic_array", "rows": 4, "cols": 4},
        "bus": {"kind": "split_bus", "bandwidth_bytes_per_cycle": 4},
        "dram": {"kind": "dram"},
        **{f"sram_{op}": {"kind": "scratchpad", "operand": op, "capacity_bytes": 1024} for op in ops},
    }
    links = [{"from": f"array.{op}", "to": f"sram_{op}.compute"} for op in ops]
    links += [{"from": f"sram_{op}.memory", "to": "bus.clients"} for op in ops]
    links += [{"from": "bus.memory", "to": "dram.clients"}]
    return System.build(components, links, registry=registry)


def test_the_component_example_runs_as_printed():
    system = split_bus_system()
    assert "write_bytes (bytes): bytes written through the bus" in system.kind_of("bus").describe()
    for result in Simulation(system).run([Layer.gemm("g", 4, 4, 4)] * 2):
        s = result.stats
        # 16 + 16 bytes read at 4 bytes/cycle (8 cycles), one fold of 14, 16 bytes written at 2 (8 cycles)
        assert s["bus.write_bytes"] == 16
        assert (s["array.stall_ifmap_cycles"], s["array.stall_filter_cycles"], s["array.stall_ofmap_cycles"]) == (
            4,
            4,
            8,
        )
        assert s["array.total_cycles"] == 8 + 14 + 8 - 1


def test_the_component_example_is_traced_in_its_own_process(tmp_path):
    system = split_bus_system()
    with Trace(tmp_path / "t.json") as trace:
        list(Simulation(system).run([Layer.gemm("g", 4, 4, 4)], trace=trace))
    events = json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    processes = {e["args"]["name"]: e["pid"] for e in events if e["name"] == "process_name"}
    assert "bus (split_bus)" in processes and not [name for name in processes if name.startswith("link")]
    tracks = {
        e["args"]["name"] for e in events if e["name"] == "thread_name" and e["pid"] == processes["bus (split_bus)"]
    }
    assert tracks == {"bus.reads transfers", "bus.writes transfers"}
    counters = {e["name"] for e in events if e["ph"] == "C" and e["pid"] == processes["bus (split_bus)"]}
    assert {"bus.reads queue", "bus.writes queue", "bus.reads utilisation"} <= counters


def test_ci_runs_the_readmes_test_command():
    test_command = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest"
    main_job = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/desim run"
    assert test_command in README and main_job in README
    assert test_command in (ROOT / ".ci" / "run").read_text()
