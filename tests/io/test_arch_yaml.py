import pytest
from helpers import ROOT

from desim import DesimError
from desim.io.arch_yaml import read_arch_yaml
from desim.io.scalesim_cfg import read_scalesim_cfg

TWIN = (ROOT / "configs" / "scale.yaml").read_text()


def write(tmp_path, text):
    path = tmp_path / "arch.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path, text) -> DesimError:
    with pytest.raises(DesimError) as error:
        read_arch_yaml(write(tmp_path, text))
    return error.value


def line_of(text: str, fragment: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_yaml_twin_builds_the_same_graph_as_scale_cfg():
    yaml_system = read_arch_yaml(ROOT / "configs" / "scale.yaml")
    cfg_system = read_scalesim_cfg(ROOT / "configs" / "scale.cfg").system()
    assert yaml_system.name == cfg_system.name
    assert dict(yaml_system.graph.nodes(data="kind")) == dict(cfg_system.graph.nodes(data="kind"))
    for node in cfg_system.graph:
        assert yaml_system.params_of(node) == cfg_system.params_of(node)
    assert sorted(yaml_system.graph.edges) == sorted(cfg_system.graph.edges)


def test_short_link_form(tmp_path):
    text = TWIN.replace("- {from: bus.memory, to: dram.clients}", "- [bus.memory, dram.clients]")
    assert read_arch_yaml(write(tmp_path, text)).graph.has_edge("bus", "dram")


def test_unknown_top_level_key(tmp_path):
    text = TWIN.replace("word_bytes: 1", "word_bytes: 1\nfrequency_ghz: 1")
    error = error_of(tmp_path, text)
    assert (error.line, error.key) == (line_of(text, "frequency_ghz"), "frequency_ghz")


def test_unknown_kind(tmp_path):
    text = TWIN.replace("kind: bus,", "kind: ring_bus,")
    error = error_of(tmp_path, text)
    assert error.line == line_of(text, "ring_bus") and "unknown kind 'ring_bus'" in error.message


def test_unknown_param(tmp_path):
    text = TWIN.replace("rows: 32", "rowz: 32")
    error = error_of(tmp_path, text)
    assert (error.key, error.line) == ("array.rowz", line_of(text, "rowz"))


def test_bad_param_value(tmp_path):
    text = TWIN.replace("dataflow: ws", "dataflow: rs")
    error = error_of(tmp_path, text)
    assert error.key == "array.dataflow" and "one of 'os', 'ws', 'is'" in error.message


def test_link_to_a_missing_node(tmp_path):
    text = TWIN.replace("{from: bus.memory, to: dram.clients}", "{from: bus.memory, to: dram0.clients}")
    error = error_of(tmp_path, text)
    assert error.line == line_of(text, "dram0") and "'dram0'" in error.message


def test_unknown_link_attribute(tmp_path):
    text = TWIN.replace("{from: bus.memory, to: dram.clients}", "{from: bus.memory, to: dram.clients, width: 4}")
    error = error_of(tmp_path, text)
    assert error.line == line_of(text, "width: 4") and "unknown link attribute" in error.message


def test_unconnected_port(tmp_path):
    text = TWIN.replace("  - {from: array.filter, to: sram_filter.compute}\n", "")
    error = error_of(tmp_path, text)
    assert error.key == "array.filter" and error.line == line_of(text, "array:")


def test_invalid_yaml(tmp_path):
    error = error_of(tmp_path, "components:\n  array: {kind: systolic_array\n")
    assert error.line is not None and "not valid YAML" in error.message


def test_not_a_mapping(tmp_path):
    assert "expected a mapping" in error_of(tmp_path, "- just\n- a list\n").message


def test_missing_file(tmp_path):
    with pytest.raises(DesimError, match="architecture file not found"):
        read_arch_yaml(tmp_path / "none.yaml")
