import pytest
import simpy

from desim import REQUEST, RESPONSE, Component, DesimError, Layer, Memory, Param, Port, Stat


class Widget(Component):
    """A test component."""

    kind = "widget"
    size_bytes = Param(int, 8, "bytes", "how big", minimum=1)
    mode = Param(str, "a", choices=("a", "b"), description="which mode")
    out = Port(REQUEST, "to memory", peer=Memory)
    inp = Port(RESPONSE, "from anyone", required=False, multiple=True)
    hits = Stat("hits", "how often")


class BigWidget(Widget):
    kind = "big_widget"
    extra = Param(int, 1, description="one more")


def test_declarations_are_collected_in_order_and_inherited():
    assert list(Widget.declared_params) == ["size_bytes", "mode"]
    assert list(Widget.declared_ports) == ["out", "inp"]
    assert list(Widget.declared_stats) == ["hits"]
    assert list(BigWidget.declared_params) == ["size_bytes", "mode", "extra"]


def test_params_become_attributes_with_defaults():
    w = Widget("w1", {"size_bytes": "16"})
    assert (w.size_bytes, w.mode) == (16, "a")
    assert Widget.size_bytes.unit == "bytes"  # class access gives the declaration


def test_unknown_and_bad_params_name_node_and_key():
    with pytest.raises(DesimError) as error:
        Widget("w1", {"sizebytes": 4})
    assert error.value.key == "w1.sizebytes"
    assert "unknown parameter" in error.value.message and "size_bytes" in error.value.message
    with pytest.raises(DesimError) as error:
        Widget("w1", {"mode": "c"})
    assert error.value.key == "w1.mode"


def test_required_param_must_be_given():
    class Needy(Component):
        kind = "needy"
        depth = Param(int, description="no default")

    with pytest.raises(DesimError, match="missing required parameter") as error:
        Needy("n")
    assert error.value.key == "n.depth"


def test_stats_behave_as_numbers_and_reset_when_a_layer_begins():
    w = Widget("w1")
    w.env = simpy.Environment()
    w.hits += 3
    assert w.stat_values() == {"hits": 3}
    w.begin_layer(Layer.gemm("g", 1, 1, 1))
    assert w.stat_values() == {"hits": 0}


def test_unbound_port_says_so():
    with pytest.raises(AttributeError, match="not bound"):
        _ = Widget("w1").out


def test_describe_lists_params_ports_and_stats():
    text = Widget.describe()
    assert text.splitlines()[0].startswith("widget")
    assert "size_bytes (int bytes, default 8): how big" in text
    assert "out (request, to Memory): to memory" in text
    assert "hits (hits): how often" in text


def test_only_request_ports_name_a_peer():
    with pytest.raises(ValueError):
        Port(RESPONSE, peer=Component)
