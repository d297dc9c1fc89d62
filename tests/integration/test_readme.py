"""The README's promises: its component example works as printed, its config example parses."""

import re

from helpers import ROOT

from desim.io.arch_yaml import read_arch_yaml
from desim.io.scalesim_cfg import read_scalesim_cfg
from desim.registry import Registry, default_registry
from desim.simulation import Simulation
from desim.system import System
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


def test_the_component_example_is_the_plugin_the_tests_install():
    printed = block("## Adding a component", "python")
    tested = (ROOT / "tests" / "plugins" / "compressor.py").read_text()
    assert printed.startswith("# my_package/compressor.py\n")
    assert printed.removeprefix("# my_package/compressor.py\n") == tested[tested.index("from desim import") :]


def test_the_component_example_runs_as_printed():
    namespace: dict = {}
    exec(compile(block("## Adding a component", "python"), "README.md", "exec"), namespace)
    registry = Registry()
    for kind in default_registry().kinds():
        registry.register(default_registry().get(kind))
    registry.register(namespace["Compressor"])
    hierarchy = read_arch_yaml(ROOT / "configs" / "hierarchy_l2.yaml")
    graph = hierarchy.graph.copy()
    graph.remove_edge("l2", "dram", key="memory")
    graph.add_node("comp", kind="compressor", params={"ratio": 2})
    graph.add_edge("l2", "comp", key="memory", src_port="memory", dst_port="clients")
    graph.add_edge("comp", "dram", key="memory", src_port="memory", dst_port="clients")
    system = System(graph, name="compressed", registry=registry)
    (result,) = Simulation(system).run([Layer.gemm("g", 64, 64, 64)])
    s = result.stats
    # 4 KiB each of IFMAP and FILTER fetched, 4 KiB of OFMAP written: the DRAM moves half of each.
    assert (s["l2.fill_bytes"], s["l2.write_through_bytes"]) == (8192, 4096)
    assert (s["comp.bytes_in"], s["comp.bytes_out"]) == (12288, 6144)
    assert (s["dram.read_bytes"], s["dram.write_bytes"]) == (4096, 2048)
    assert {"comp queue", "comp service"} <= set(s["array.stall_cause_cycles"])


def test_ci_runs_the_readmes_test_command():
    test_command = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest"
    main_job = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/desim run"
    assert test_command in README and main_job in README
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_the_mapper_example_is_the_plugin_the_tests_install():
    printed = block("### Adding a mapper", "python")
    tested = (ROOT / "tests" / "plugins" / "filter_first.py").read_text()
    assert printed.startswith("# my_package/filter_first.py\n")
    assert printed.removeprefix("# my_package/filter_first.py\n") == tested[tested.index("from desim") :]
