"""Typed component parameters, declared in a component's class body and checked before time starts.

A ``Param`` names its type, default, unit and a one-line description. Values from a config file,
a YAML architecture or Python are coerced by :meth:`Param.coerce`, which raises a
:class:`~desim.errors.DesimError` naming the key and what was expected.
"""

from __future__ import annotations

import math
from typing import Any

from desim.errors import DesimError

REQUIRED: Any = type("Required", (), {"__repr__": lambda self: "REQUIRED"})()
"""Sentinel default: the parameter has no default and must be given."""

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


class Param:
    """One declared parameter of a component.

    Args:
        type_: ``int``, ``float``, ``str`` or ``bool``.
        default: the value used when none is given, or ``REQUIRED``.
        unit: the unit of the value (``"bytes"``, ``"cycles"``), empty for plain names.
        description: one line saying what the parameter sets.
        choices: the only accepted values, for string parameters.
        minimum: the smallest accepted value, for numbers.
        positive: whether a number must be strictly greater than zero.
        allow_inf: whether a float may be infinite (ideal bandwidth, for instance).
    """

    def __init__(
        self,
        type_: type,
        default: Any = REQUIRED,
        unit: str = "",
        description: str = "",
        *,
        choices: tuple[str, ...] | None = None,
        minimum: float | None = None,
        positive: bool = False,
        allow_inf: bool = False,
    ) -> None:
        if type_ not in _TYPE_NAMES:
            raise TypeError(f"Param type must be one of int, float, str, bool; got {type_!r}")
        self.type = type_
        self.unit = unit
        self.description = description
        self.choices = choices
        self.minimum = minimum
        self.positive = positive
        self.allow_inf = allow_inf
        self.name = ""
        self.default = default if default is REQUIRED else self.coerce(default)

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        # A component stores its coerced values in its instance dict, which shadows this
        # (non-data) descriptor; reaching here means class access, which returns the declaration.
        if instance is None:
            return self
        raise AttributeError(f"parameter {self.name!r} has no value on this instance")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def expected(self) -> str:
        """What an accepted value looks like, for error messages."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        text = _TYPE_NAMES[self.type]
        if self.minimum is not None:
            text += f" >= {self.minimum:g}"
        if self.positive:
            text += " > 0"
        if self.allow_inf:
            text += " (or inf)"
        return text

    def coerce(self, value: Any) -> Any:
        """Return ``value`` as this parameter's type, or raise DesimError saying what was expected."""
        result = self._convert(value)
        if result is None:
            raise DesimError(f"expected {self.expected()}, got {value!r}", key=self.name or None)
        return result

    def _convert(self, value: Any) -> Any:
        if isinstance(value, str) and self.type is not str:
            value = value.strip()
        if self.type is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            return None
        if self.type is str:
            if not isinstance(value, str):
                return None
            if self.choices and value not in self.choices:
                return None
            return value
        if isinstance(value, bool):
            return None
        if self.type is int:
            number = _as_int(value)
        else:
            number = _as_float(value)
            if number is not None and (math.isnan(number) or (math.isinf(number) and not self.allow_inf)):
                return None
        if number is None or (self.minimum is not None and number < self.minimum):
            return None
        if self.positive and number <= 0:
            return None
        return number

    def describe(self) -> str:
        """One line for ``desim components``: name, type, default, unit and description."""
        default = "required" if self.required else f"default {_show(self.default)}"
        unit = f" {self.unit}" if self.unit else ""
        choices = f", one of {'/'.join(self.choices)}" if self.choices else ""
        return f"{self.name} ({self.type.__name__}{unit}, {default}{choices}): {self.description}"


def _as_int(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value, 10)
        except ValueError:
            return None
    return None


def _as_float(value: Any) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _show(value: Any) -> str:
    return "inf" if isinstance(value, float) and math.isinf(value) else repr(value)
