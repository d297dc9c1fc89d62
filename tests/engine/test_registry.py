import pytest

from desim import Component, DesimError
from desim.components.compute.systolic_array import SystolicArray
from desim.registry import Registry, default_registry


def test_stock_components_come_from_entry_points():
    registry = default_registry()
    assert {"systolic_array", "scratchpad", "dram", "bus"} <= set(registry.kinds())
    assert registry.get("systolic_array") is SystolicArray


def test_duplicate_kind_fails_naming_both_classes():
    class A(Component):
        kind = "thing"

    class B(Component):
        kind = "thing"

    registry = Registry()
    registry.register(A)
    registry.register(A)  # the same class again is harmless
    with pytest.raises(DesimError, match="registered twice") as error:
        registry.register(B)
    assert "A" in str(error.value) and "B" in str(error.value)


def test_unknown_kind_lists_the_known_ones():
    registry = Registry()
    registry.register(SystolicArray)
    with pytest.raises(DesimError, match=r"unknown kind 'systolc_array' \(known: systolic_array\)"):
        registry.get("systolc_array")


def test_a_class_without_kind_is_refused():
    class Nameless(Component):
        pass

    with pytest.raises(DesimError, match="declares no kind"):
        Registry().register(Nameless)
