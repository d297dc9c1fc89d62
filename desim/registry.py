"""The registry of component kinds, filled from the ``desim.components`` entry-point group.

Stock components register exactly as a third-party package does, by an entry point whose name
is the kind and whose value is the class::

    [project.entry-points."desim.components"]
    my_cache = "my_package.cache:MyCache"

so the engine never imports the stock library by name. Tests and scripts can also build a
:class:`Registry` by hand and :meth:`Registry.register` classes into it.
"""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from desim.component import ROLES, Component
from desim.errors import DesimError
from desim.stats import Stat

ENTRY_POINT_GROUP = "desim.components"
MAPPER_GROUP = "desim.mappers"
"""The entry-point group of mappers: what chooses a compute unit's mapping (its ``mapper`` param)."""


class Registry:
    """Component classes by kind. Registering a kind twice is an error."""

    def __init__(self) -> None:
        self._kinds: dict[str, type[Component]] = {}

    def register(self, cls: type[Component]) -> type[Component]:
        """Add ``cls`` under its ``kind``; usable as a class decorator."""
        if not (isinstance(cls, type) and issubclass(cls, Component)):
            raise DesimError(f"{cls!r} is not a Component subclass")
        if not cls.kind:
            raise DesimError(f"{cls.__qualname__} declares no kind")
        clashes = engine_clashes(cls)
        if clashes:
            raise DesimError(
                f"kind {cls.kind!r} ({_qualname(cls)}) declares {', '.join(map(repr, clashes))}, which the engine "
                "uses for its own attributes; give them other names"
            )
        existing = self._kinds.get(cls.kind)
        if existing is not None and existing is not cls:
            raise DesimError(f"kind {cls.kind!r} is registered twice: by {_qualname(existing)} and {_qualname(cls)}")
        self._kinds[cls.kind] = cls
        return cls

    def get(self, kind: str) -> type[Component]:
        try:
            return self._kinds[kind]
        except KeyError:
            raise DesimError(f"unknown kind {kind!r} (known: {', '.join(sorted(self._kinds))})") from None

    def __contains__(self, kind: object) -> bool:
        return kind in self._kinds

    def kinds(self) -> list[str]:
        return sorted(self._kinds)

    @classmethod
    def from_entry_points(cls, group: str = ENTRY_POINT_GROUP) -> Registry:
        """A registry holding every class advertised in the entry-point ``group``."""
        registry = cls()
        for entry in entry_points(group=group):
            loaded = load_entry(entry, "component")
            if getattr(loaded, "kind", None) != entry.name:
                raise DesimError(
                    f"entry point {entry.name!r} ({entry.value}) loads a class whose kind is "
                    f"{getattr(loaded, 'kind', None)!r}; the entry-point name must equal the kind"
                )
            registry.register(loaded)
        return registry


def load_entry(entry: EntryPoint, what: str) -> Any:
    """What an entry point advertises, or a DesimError naming the plug-in that would not load."""
    try:
        return entry.load()
    except Exception as error:  # a broken plugin must say which one it is
        raise DesimError(f"cannot load {what} {entry.name!r} from {entry.value}: {error}") from error


@functools.cache
def installed_mappers() -> dict[str, Any]:
    """What the ``desim.mappers`` entry points advertise, by name, loaded once per process (a
    compute unit that takes a mapper checks what it gets)."""
    found: dict[str, Any] = {}
    for entry in entry_points(group=MAPPER_GROUP):
        loaded = load_entry(entry, "mapper")
        if entry.name in found and found[entry.name] is not loaded:
            raise DesimError(f"mapper {entry.name!r} is registered twice")
        found[entry.name] = loaded
    return found


@functools.cache
def default_registry() -> Registry:
    """The registry of installed components, loaded once per process (it only holds classes)."""
    return Registry.from_entry_points()


def engine_clashes(cls: type[Component]) -> list[str]:
    """Names ``cls`` declares as params, ports or stats that an engine class already uses.

    The engine's roles (:data:`~desim.component.ROLES`) and :class:`~desim.component.Component`
    own their methods and attributes (``name``, ``channels``, ``stall_causes``, ...); a param
    called ``channels`` would silently replace a method the simulation calls. A stat the engine
    itself declares (a buffer's ``traffic``) may be declared again as a stat.
    """
    engine = (Component, *ROLES.values())
    taken = {name for klass in engine for name in vars(klass) if not name.startswith("__")}
    taken |= {"name", "env", "system", "layer_start", "trace"}  # set on every instance
    declared = {**cls.declared_params, **cls.declared_ports, **cls.declared_stats}
    clashes = []
    for name, declaration in declared.items():
        owned = next((vars(klass)[name] for klass in engine if name in vars(klass)), None)
        if name in taken and not (isinstance(declaration, Stat) and isinstance(owned, Stat)):
            clashes.append(name)
    return clashes


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
