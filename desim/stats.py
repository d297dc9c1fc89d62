"""Statistics a component declares in its class body, each with a unit and a description.

At run time a ``Stat`` behaves like a numeric attribute of the component (``self.read_bytes +=
n``). The engine resets every stat when a layer begins and collects them, scoped by the node's
name, into one flat mapping (``sram_ifmap.dram_read_bytes``) when the layer ends.
"""

from __future__ import annotations

from typing import Any


class Stat:
    """One declared statistic.

    Args:
        unit: the unit of the value (``"cycles"``, ``"bytes"``, ``"%"``).
        description: one line saying what is counted.
        initial: the value it takes when a layer begins (a copy of it, if it is a container).
    """

    def __init__(self, unit: str, description: str, *, initial: Any = 0) -> None:
        self.unit = unit
        self.description = description
        self.initial = initial
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return instance._stat_values[self.name]

    def __set__(self, instance: Any, value: Any) -> None:
        instance._stat_values[self.name] = value

    def describe(self) -> str:
        """One line for ``desim components``."""
        unit = f" ({self.unit})" if self.unit else ""
        return f"{self.name}{unit}: {self.description}"
