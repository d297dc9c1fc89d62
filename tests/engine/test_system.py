"""Building, validating and elaborating systems: errors name the node and port."""

import math

import pytest
import simpy

from desim import REQUEST, RESPONSE, DesimError, Interconnect, Memory, Port
from desim.channel import Channel
from desim.registry import Registry, default_registry
from desim.system import System

OPS = ("ifmap", "filter", "ofmap")


def parts(**overrides):
    components = {
        "array": {"kind": "systolic_array", "rows": 4, "cols": 4},
        "bus": {"kind": "bus"},
        "dram": {"kind": "dram", "bandwidth_bytes_per_cycle": 8},
        **{f"sram_{op}": {"kind": "scratchpad", "operand": op, "capacity_bytes": 1024} for op in OPS},
    }
    links = [{"from": f"array.{op}", "to": f"sram_{op}.compute"} for op in OPS]
    links += [{"from": f"sram_{op}.memory", "to": "bus.clients"} for op in OPS]
    links += [{"from": "bus.memory", "to": "dram.clients"}]
    components.update(overrides.pop("components", {}))
    return components, overrides.pop("links", links)


def error_of(components, links) -> DesimError:
    with pytest.raises(DesimError) as error:
        System.build(components, links).validate()
    return error.value


def test_standard_system_validates_and_routes_through_the_bus():
    system = System.build(*parts())
    system.validate()
    live = system.elaborate(simpy.Environment())
    route = live["sram_ifmap"].memory.route
    assert route.nodes == ["sram_ifmap", "bus", "dram"]
    assert route.peer is live["dram"]
    # ideal links are left out of the hot path; the bus stays (it counts traffic)
    assert route.to_peer == (live["bus"]._channel,)


def test_unknown_kind_names_the_node():
    components, links = parts()
    components["bus"] = {"kind": "buss"}
    error = error_of(components, links)
    assert error.key == "bus.kind" and "unknown kind 'buss'" in error.message


def test_unknown_param_names_node_and_key():
    components, links = parts()
    components["dram"]["bandwith_bytes_per_cycle"] = 4
    error = error_of(components, links)
    assert error.key == "dram.bandwith_bytes_per_cycle"


def test_unconnected_required_port_is_named():
    components, links = parts()
    links = [link for link in links if link["from"] != "array.filter"]
    error = error_of(components, links)
    assert error.key == "array.filter" and "is not connected" in error.message


def test_link_to_a_missing_node_is_named():
    components, links = parts()
    links.append({"from": "sram_psum.memory", "to": "bus.clients"})
    with pytest.raises(DesimError) as error:
        System.build(components, links)
    assert error.value.key == "links[7].from" and "'sram_psum'" in error.value.message


def test_link_must_run_from_request_to_response_port():
    components, links = parts()
    links[0] = {"from": "sram_ifmap.compute", "to": "array.ifmap"}
    error = error_of(components, links)
    assert error.key == "sram_ifmap.compute" and "response port" in error.message


def test_unknown_port_is_named():
    components, links = parts()
    links[0] = {"from": "array.input", "to": "sram_ifmap.compute"}
    error = error_of(components, links)
    assert error.key == "array.input" and "no port 'input'" in error.message


def test_no_route_to_memory_is_named():
    components, links = parts()
    links = [link for link in links if link["from"] != "bus.memory"]
    error = error_of(components, links)
    assert error.key == "bus.memory"


def test_operand_mismatch_is_named():
    components, links = parts()
    links[0], links[1] = (
        {"from": "array.ifmap", "to": "sram_filter.compute"},
        {"from": "array.filter", "to": "sram_ifmap.compute"},
    )
    error = error_of(components, links)
    assert error.key == "array.ifmap" and "holds 'filter'" in error.message


def test_wrong_peer_class_is_named():
    components, links = parts()
    links[0] = {"from": "array.ifmap", "to": "dram.clients"}
    error = error_of(components, links)
    assert error.key == "array.ifmap" and "needs Buffer" in error.message


def test_two_memories_behind_one_port_is_ambiguous():
    class Splitter(Interconnect):
        kind = "splitter"
        clients = Port(RESPONSE, "from buffers", multiple=True)
        left = Port(REQUEST, "to one memory", peer=Memory)
        right = Port(REQUEST, "to another", peer=Memory)

    registry = Registry()
    for kind in default_registry().kinds():
        registry.register(default_registry().get(kind))
    registry.register(Splitter)
    components, links = parts(components={"bus": {"kind": "splitter"}, "dram2": {"kind": "dram"}})
    links = [link for link in links if link["from"] != "bus.memory"]
    links += [{"from": "bus.left", "to": "dram.clients"}, {"from": "bus.right", "to": "dram2.clients"}]
    with pytest.raises(DesimError) as error:
        System.build(components, links, registry=registry).validate()
    # Nodes are checked in name order, so the first buffer by name is the one named.
    assert error.value.key == "sram_filter.memory" and "more than one" in error.value.message


def test_a_buffer_too_small_to_feed_the_array_is_named():
    components, links = parts()  # a 4x4 array: a buffer must hold two 4-word edges
    components["sram_filter"]["capacity_bytes"] = 31
    with pytest.raises(DesimError) as error:
        System.build(components, links, word_bytes=4).validate()
    assert error.value.key == "sram_filter.capacity_bytes" and "at least 32" in error.value.message
    components["sram_filter"]["capacity_bytes"] = 32
    System.build(components, links, word_bytes=4).validate()


def test_an_array_to_scratchpad_link_cannot_carry_its_own_timing():
    components, links = parts()
    links[1] = {**links[1], "latency_cycles": 100}
    error = error_of(components, links)
    assert error.key == "array.filter" and "bandwidth or latency" in error.message


def test_a_kind_must_be_a_name():
    components, links = parts()
    components["bus"]["kind"] = ["bus"]
    error = error_of(components, links)
    assert error.key == "bus.kind" and "expected a kind name" in error.message


def test_bad_link_parameter_is_named():
    components, links = parts()
    links[3] = {**links[3], "bandwidth_bytes_per_cycle": -1}
    error = error_of(components, links)
    assert error.key == "sram_ifmap.memory->bus.clients" and "bandwidth_bytes_per_cycle" in error.message


def test_finite_links_become_hops_both_ways():
    components, links = parts()
    links[3] = {**links[3], "bandwidth_bytes_per_cycle": 16, "latency_cycles": 3}
    live = System.build(components, links).elaborate(simpy.Environment())
    route = live["sram_ifmap"].memory.route
    assert [type(h) for h in route.to_peer] == [Channel, Channel]
    assert route.request_latency == 3
    assert route.to_peer[0].bandwidth_bytes_per_cycle == 16 and math.isinf(route.to_peer[1].bandwidth_bytes_per_cycle)


def test_each_elaboration_is_fresh():
    system = System.build(*parts())
    first = system.elaborate(simpy.Environment())["array"]
    second = system.elaborate(simpy.Environment())["array"]
    assert first is not second
