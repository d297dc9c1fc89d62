"""Typed component parameters, declared in a component's class body and checked before time starts.

A ``Param`` names its type, default, unit and a one-line description. Values from a config file,
a YAML architecture or Python are coerced by :meth:`Param.coerce`, which raises a
:class:`~desim.errors.DesimError` naming the key and what was expected.
"""

from __future__ import annotations

import math
import re
from typing import Any

from desim.errors import DesimError
from desim.limits import MAX_NUMBER

REQUIRED: Any = type("Required", (), {"__repr__": lambda self: "REQUIRED"})()
"""Sentinel default: the parameter has no default and must be given."""

_TYPE_NAMES = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "true or false",
    tuple: "a list of names",
    dict: "a mapping of names to values",
}

_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_INFINITY = re.compile(r"[+]?inf(inity)?", re.IGNORECASE)


_LONGEST = 30
"""Digits beyond which a number is out of every range: it is not converted, only known too large."""


def parse_int(text: str) -> int | None:
    """``text`` as an integer if it is one written plainly in ASCII digits (no ``1_0``, no ``0x10``).

    An integer of more than 30 digits comes back as +-10^30, a stand-in beyond every limit.
    """
    text = text.strip()
    if not _INTEGER.fullmatch(text):
        return None
    sign, digits = ("-" if text.startswith("-") else ""), text.lstrip("+-").lstrip("0") or "0"
    if len(digits) > _LONGEST:
        return -(10**_LONGEST) if sign else 10**_LONGEST
    return int(sign + digits)  # without its leading zeros: a long run of them is still a short number


def parse_float(text: str) -> float | None:
    """``text`` as a number if written as a plain decimal (``12``, ``0.5``, ``1e3``) or ``inf``; else None.

    ``nan``, decimals too large for a float (``1e400``) and forms only Python accepts (``1_0``) are
    not numbers here.
    """
    text = text.strip()
    if _INFINITY.fullmatch(text):
        return math.inf
    if not _DECIMAL.fullmatch(text):
        return None
    number = float(text)
    return number if math.isfinite(number) else None  # 1e400 is not infinity, it is out of range


def brief(value: Any) -> str:
    """``repr(value)`` for a message, cut short if long (a 400-digit number, a pasted file)."""
    try:
        text = repr(value)
    except ValueError:  # an integer too long for Python to print
        return "a number too long to show"
    return text if len(text) <= 40 else text[:37] + "..."


def show_number(value: float) -> str:
    """A bound for messages: ``2^53`` rather than its sixteen digits, ``65536`` and ``0.001`` as they are."""
    if value == int(value):
        whole = int(value)
        power = whole.bit_length() - 1
        return f"2^{power}" if power >= 20 and whole == 1 << power else str(whole)
    return f"{value:g}"


class Param:
    """One declared parameter of a component.

    Args:
        type_: ``int``, ``float``, ``str``, ``bool``, ``tuple`` for a list of distinct names
            (``[ifmap, filter]`` in YAML, ``ifmap,filter`` in text), kept as a tuple, or ``dict``
            for a mapping of names to values (YAML only), whose values the component checks.
        default: the value used when none is given, or ``REQUIRED``.
        unit: the unit of the value (``"bytes"``, ``"cycles"``), empty for plain names.
        description: one line saying what the parameter sets.
        choices: the only accepted values, for string parameters (and each name of a list).
        minimum: the smallest accepted value, for numbers.
        maximum: the largest accepted finite value, for numbers (at most, and by default, 2^53).
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
        maximum: float = MAX_NUMBER,
        positive: bool = False,
        allow_inf: bool = False,
    ) -> None:
        if type_ not in _TYPE_NAMES:
            raise TypeError(f"Param type must be one of int, float, str, bool, tuple, dict; got {type_!r}")
        self.type = type_
        self.unit = unit
        self.description = description
        self.choices = choices
        self.minimum = minimum
        self.maximum = min(maximum, MAX_NUMBER)
        self.positive = positive
        self.allow_inf = allow_inf
        self.name = ""
        self.default = default if default is REQUIRED or default is None else self.coerce(default)
        """None: unset, the component works out the value (a DRAM takes it from its preset)."""

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
        if self.type is tuple:
            names = f" from {', '.join(repr(c) for c in self.choices)}" if self.choices else ""
            return f"a list of distinct names{names}"
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        text = _TYPE_NAMES[self.type]
        if self.type in (int, float):
            if self.minimum is not None:
                text += f" from {show_number(self.minimum)} to {show_number(self.maximum)}"
            else:
                text += f" up to {show_number(self.maximum)}"
            if self.positive and not (self.minimum is not None and self.minimum > 0):
                text += ", > 0"
            if self.allow_inf:
                text += " (or inf)"
        return text

    def coerce(self, value: Any) -> Any:
        """Return ``value`` as this parameter's type, or raise DesimError saying what was expected."""
        result = self._convert(value)
        if result is None:
            raise DesimError(f"expected {self.expected()}, got {brief(value)}", key=self.name or None)
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
        if self.type is tuple:
            return self._names(value)
        if self.type is dict:
            return dict(value) if isinstance(value, dict) and all(isinstance(k, str) for k in value) else None
        if self.type is str:
            if not isinstance(value, str):
                return None
            if self.choices and value not in self.choices:
                return None
            return value
        if isinstance(value, bool):
            return None
        number = _as_int(value) if self.type is int else _as_float(value)
        if number is None:
            return None
        if isinstance(number, float) and not math.isfinite(number):
            return number if self.allow_inf and number == math.inf else None
        if self.minimum is not None and number < self.minimum:
            return None
        if number > self.maximum or number < -self.maximum or (self.positive and number <= 0):
            return None
        return number

    def _names(self, value: Any) -> tuple[str, ...] | None:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")] if value.strip() else []
        if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
            return None
        if len(set(value)) != len(value) or (self.choices and not set(value) <= set(self.choices)):
            return None
        return tuple(value)

    def describe(self) -> str:
        """One line for ``desim components``: name, type, default, unit and description."""
        default = "required" if self.required else "unset" if self.default is None else f"default {_show(self.default)}"
        unit = f" {self.unit}" if self.unit else ""
        kind = {tuple: "list", dict: "mapping"}.get(self.type, self.type.__name__)
        choices = f", {'of' if self.type is tuple else 'one of'} {'/'.join(self.choices)}" if self.choices else ""
        return f"{self.name} ({kind}{unit}, {default}{choices}): {self.description}"


def _as_int(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return parse_int(value)
    return None


def _as_float(value: Any) -> float | None:
    if isinstance(value, int):
        # Beyond 2^53 a float would round the integer (or overflow): it is out of range.
        return float(value) if abs(value) <= MAX_NUMBER else None
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        return parse_float(value)
    return None


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return f"[{', '.join(value)}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_show(item)}" for key, item in value.items()) + "}"
    return "inf" if isinstance(value, float) and math.isinf(value) else repr(value)
