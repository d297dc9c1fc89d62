"""Mappers: what decides, per layer, the loop order and the temporal tile a systolic array runs.

A :class:`Mapping` (see ``dataflow``) fixes the folds a layer takes and the order they run in;
from it and the buffers' room, ``fold_schedule`` derives every tile each buffer moves. A mapper
chooses the mapping, given a :class:`Problem`: the layer's share, the array, the word and
accumulator widths, the room of each operand's buffer, and the array's ``mapping`` spec. It can
ask the problem the exact traffic of any mapping (:meth:`Problem.traffic`: bytes between the
buffers and the level below, counted from the tiles, not estimated) and its compute cycles.

Stock mappers:

``scalesim``
    SCALE-Sim's mapping: all of the temporal dimension in each fold, column fold outer, and
    inputs that do not fit their buffers fetched fold by fold.
``psum-resident``
    Each output tile's reduction completes on chip: among the candidates (below) whose partial
    sums never leave the buffer, the one that moves the fewest bytes (then the fewest cycles).
    When none keeps them (not even a one-row output tile fits), the one that moves the fewest.
``min-traffic``
    The fewest bytes moved over every candidate, SCALE-Sim's mapping and ``psum-resident``'s
    among them, so never more than either (then the fewest cycles).
``explicit``
    The user's, from the array's ``mapping`` param: ``{order: NMK, M: 256}`` for every layer, or
    ``{Conv1: {...}, "*": {...}}`` per layer name (``*`` for the others). ``order`` is the loop
    order over M, N and K, outer to inner; the temporal dimension's size is its tile (the spatial
    ones are the array's edges); ``storage_tiles: false`` fetches inputs fold by fold. Partial
    sums must stay on chip (checked against the OFMAP buffer before time starts) unless the spec
    says ``psums: spill``.

Candidates are SCALE-Sim's mapping and, with storage-level tiles allowed (see ``fold_schedule``;
they never move more bytes), every loop order with the temporal dimension whole, and with it cut
into the fewest equal tiles such that: the output block (tile x the array's columns, at the
accumulator's width) fits the half of the OFMAP buffer a block may stage; or an input that does
not fit its buffer has storage-level tiles (that tile of the temporal dimension with all of its
other dimension) that fit half of it; or both.

Mappers register like components: an entry point in the ``desim.mappers`` group whose name is
the mapper's ``name`` and whose value is a :class:`Mapper` subclass.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from desim.components.compute.dataflow import DIMS, ORDERS, Mapping, map_layer
from desim.components.compute.fold_schedule import Traffic, count_traffic
from desim.components.compute.ifmap_footprint import distinct_inputs
from desim.errors import DesimError, warn_once
from desim.limits import MAX_NUMBER
from desim.params import brief, show_number
from desim.registry import installed_mappers
from desim.workload import Layer, Share

SPEC_KEYS = ("order", "M", "N", "K", "psums", "storage_tiles")
PSUM_CHOICES = ("keep", "spill")


@dataclass(frozen=True)
class Problem:
    """What a mapper maps: a layer's share on an array with buffers of given room."""

    layer: Layer
    share: Share
    rows: int
    cols: int
    dataflow: str
    word_bytes: int
    accumulator_bytes: int
    capacity: dict[str, int]
    """Bytes of room for each operand (its buffer, or its share of one it shares)."""
    spec: dict[str, Any] = field(default_factory=dict)
    """The array's ``mapping`` spec for this layer (empty if none)."""
    _counted: dict[tuple[int, str, bool], Traffic] = field(default_factory=dict, compare=False, repr=False)

    def key(self) -> tuple:
        """Everything that decides the problem, as something hashable."""
        return (
            self.layer.shape,
            self.share,
            self.rows,
            self.cols,
            self.dataflow,
            self.word_bytes,
            self.accumulator_bytes,
            tuple(sorted(self.capacity.items())),
            repr(sorted(self.spec.items())),
        )

    def mapping(self, tile: int = 0, order: str = "", *, storage_tiles: bool = False) -> Mapping:
        """A mapping of this problem: SCALE-Sim's by default."""
        return map_layer(
            self.layer,
            self.rows,
            self.cols,
            self.dataflow,
            self.share,
            tile=tile,
            order=order,
            storage_tiles=storage_tiles,
        )

    def traffic(self, mapping: Mapping) -> Traffic:
        """The exact bytes ``mapping`` moves between the buffers and the level below."""
        key = (mapping.tile, mapping.order, mapping.storage_tiles)
        if key not in self._counted:
            self._counted[key] = count_traffic(
                self.layer, mapping, self.word_bytes, self.capacity, self.share, self.accumulator_bytes
            )
        return self._counted[key]

    def cost(self, mapping: Mapping) -> tuple[int, int]:
        """Bytes moved, then compute cycles: what the stock mappers minimise, in that order."""
        return self.traffic(mapping).total, mapping.ideal_cycles()

    def psum_room(self) -> int:
        """Partial sums the OFMAP buffer stages at once: half of it, at the accumulator's width."""
        return max(1, max(1, self.capacity["ofmap"] // self.accumulator_bytes) // 2)

    def candidates(self) -> list[Mapping]:
        """SCALE-Sim's mapping first, then every other loop order and temporal tile worth trying (see above)."""
        scalesim = self.mapping()
        time_dim = scalesim.dims[2]
        temporal = scalesim.temporal
        fitting = [self._psum_tile(scalesim), *self._staged_tiles(time_dim, temporal)]
        fitting = [tile for tile in fitting if tile is not None and tile < temporal]
        tiles = [temporal, *fitting, *([min(fitting)] if len(fitting) > 1 else [])]
        found, seen = [scalesim], {_folds_key(scalesim)}
        for tile in dict.fromkeys(_balanced(tile, temporal) for tile in tiles):
            for order in ORDERS:
                mapping = self.mapping(tile, order, storage_tiles=True)
                if _folds_key(mapping) not in seen:
                    seen.add(_folds_key(mapping))
                    found.append(mapping)
        return found

    def _psum_tile(self, scalesim: Mapping) -> int | None:
        """The largest temporal tile whose output block (with the array's columns) fits the psum room."""
        if scalesim.dims[2] == "K":  # os: the output block does not grow with the tile
            return None
        across = min(self.cols, scalesim.spatial_cols)
        return self.psum_room() // across or None

    def _staged_tiles(self, time_dim: str, temporal: int) -> list[int | None]:
        """For each input that does not fit its buffer whole, the largest temporal tile whose
        storage-level tile (that tile of the temporal dimension with all of the input's other)
        fits half its buffer."""
        layer, share, word = self.layer, self.share, self.word_bytes
        found: list[int | None] = []
        whole_ifmap = distinct_inputs(layer, share.m_start, share.m_stop, 0, layer.k)
        if time_dim in "MK" and whole_ifmap > self.capacity["ifmap"] // word:

            def inputs(t: int) -> int:
                if time_dim == "M":
                    return distinct_inputs(layer, share.m_start, share.m_start + t, 0, layer.k)
                return distinct_inputs(layer, share.m_start, share.m_stop, 0, t)

            found.append(_largest(inputs, max(1, self.capacity["ifmap"] // word // 2), temporal))
        if time_dim in "KN" and layer.k * share.n > self.capacity["filter"] // word:
            other = share.n if time_dim == "K" else layer.k
            found.append(max(1, self.capacity["filter"] // word // 2) // other or None)
        return found


def _largest(elements: Callable[[int], int], room: int, most: int) -> int | None:
    """The largest ``t <= most`` with ``elements(t) <= room`` (``elements`` grows with ``t``); None if none."""
    if elements(1) > room:
        return None
    low, high = 1, most
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if elements(middle) <= room else (low, middle - 1)
    return low


def _balanced(tile: int, temporal: int) -> int:
    """The smallest tile that cuts ``temporal`` into as few tiles as ``tile`` does (equal ones, but the last)."""
    return -(-temporal // -(-temporal // tile))


def _folds_key(mapping: Mapping) -> tuple[str, int, bool]:
    """What decides a mapping's schedule: its order without the loops of one iteration, its tile,
    and whether inputs may take storage-level tiles."""
    loops = "".join(dim for dim in mapping.order if mapping.extent(dim) > mapping.block(dim))
    return loops, mapping.tile, mapping.storage_tiles


class Mapper:
    """Chooses each layer's mapping. Subclass it, set ``name``, and implement :meth:`map`.

    A mapper that reads the array's ``mapping`` spec overrides :meth:`check` (and, to check the
    layer names of a per-layer spec, :meth:`check_layers`); the others ignore a spec, saying so.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def check(self, spec: dict[str, Any], key: str, array: Any) -> None:
        """Raise DesimError (with ``key``) if the ``mapping`` spec cannot be used by this mapper on
        ``array`` (the compute unit: its ``rows``, ``cols`` and ``dataflow``); before time starts."""
        if spec:
            warn_once(f"{key}: the {self.name} mapper takes no mapping, so it is ignored (mapper: explicit uses it)")

    def check_layers(self, spec: dict[str, Any], key: str, names: set[str]) -> None:
        """Raise DesimError if the spec names layers that are not among the workload's ``names``."""

    def map(self, problem: Problem) -> Mapping:
        raise NotImplementedError


class ScaleSimMapper(Mapper):
    name = "scalesim"
    description = "SCALE-Sim's: all of the temporal dimension per fold, column fold outer (parity)"

    def map(self, problem: Problem) -> Mapping:
        return problem.mapping()


class PsumResidentMapper(Mapper):
    name = "psum-resident"
    description = "partial sums finish on chip; then the fewest bytes moved"

    def map(self, problem: Problem) -> Mapping:
        candidates = problem.candidates()
        keeping = [c for c in candidates if not problem.traffic(c).psum_write]
        return min(keeping or candidates, key=problem.cost)


class MinTrafficMapper(Mapper):
    name = "min-traffic"
    description = "the fewest bytes moved to and from the level below, over every candidate"

    def map(self, problem: Problem) -> Mapping:
        return min(problem.candidates(), key=problem.cost)


class ExplicitMapper(Mapper):
    name = "explicit"
    description = "the array's mapping param: {order: NMK, M: 256}, or per layer {Conv1: {...}, '*': {...}}"

    def check(self, spec: dict[str, Any], key: str, array: Any) -> None:
        if not spec:
            raise DesimError(
                "the explicit mapper needs a mapping (a param of the array in a YAML architecture), "
                "e.g. mapping: {order: NMK, M: 256}",
                key=key,
            )
        specs = {f"{key}.{name}": one for name, one in spec.items()} if per_layer(spec) else {key: spec}
        for where, one in specs.items():
            if not isinstance(one, dict):
                raise DesimError(f"expected a mapping like {{order: NMK, M: 256}}, got {brief(one)}", key=where)
            _check_spec(one, where, array)

    def check_layers(self, spec: dict[str, Any], key: str, names: set[str]) -> None:
        if per_layer(spec):
            unknown = [name for name in spec if name != "*" and name not in names]
            if unknown:
                raise DesimError(
                    "names no layer of this workload (layers are named as the reports name them; a depthwise "
                    "row's channels are <name>Channel_<i>)",
                    key=f"{key}.{unknown[0]}",
                )

    def map(self, problem: Problem) -> Mapping:
        spec = problem.spec
        temporal_dim = problem.mapping().dims[2]
        mapping = problem.mapping(
            spec.get(temporal_dim, 0), spec.get("order", ""), storage_tiles=spec.get("storage_tiles", True)
        )
        traffic = problem.traffic(mapping)
        if traffic.psum_write and spec.get("psums", "keep") == "keep":
            raise DesimError(
                f"its explicit mapping (order {mapping.order}, {temporal_dim} tiles of {mapping.tile}) keeps more "
                f"partial sums alive at once than the {problem.psum_room():,} the OFMAP buffer stages (half of its "
                f"{problem.capacity['ofmap']:,} bytes, {problem.accumulator_bytes} B each); tile {temporal_dim} "
                "smaller, put K innermost, or allow a spill with psums: spill"
            )
        return mapping


def per_layer(spec: AnyMapping[str, Any]) -> bool:
    """Whether a mapping spec is given per layer name (its values are specs) rather than for every layer."""
    return any(isinstance(value, dict) for value in spec.values())


def spec_for(spec: dict[str, Any], layer: str, key: str) -> dict[str, Any]:
    """The part of the array's ``mapping`` spec that applies to ``layer``."""
    if not per_layer(spec):
        return spec
    if layer in spec:
        return spec[layer]
    if "*" in spec:
        return spec["*"]
    raise DesimError(f"its mapping param has no entry for layer {layer!r} (nor '*' for the others)", key=key)


def _check_spec(spec: dict[str, Any], key: str, array: Any) -> None:
    rows_dim, cols_dim, temporal_dim = DIMS[array.dataflow]
    for name, value in spec.items():
        if name not in SPEC_KEYS:
            raise DesimError(f"unknown key {name!r} (expected {', '.join(SPEC_KEYS)})", key=f"{key}.{name}")
        if name == "order" and value not in ORDERS:
            raise DesimError(
                f"expected the loop order as M, N and K each once, outer first (e.g. NMK), got {value!r}",
                key=f"{key}.order",
            )
        if name == "storage_tiles" and not isinstance(value, bool):
            raise DesimError(f"expected true or false, got {value!r}", key=f"{key}.storage_tiles")
        if name == "psums" and value not in PSUM_CHOICES:
            raise DesimError(f"expected one of {', '.join(PSUM_CHOICES)}, got {value!r}", key=f"{key}.psums")
        if name in "MNK" and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_NUMBER):
            raise DesimError(
                f"expected a tile size from 1 to {show_number(MAX_NUMBER)}, got {brief(value)}", key=f"{key}.{name}"
            )
        for dim, edge, side in ((rows_dim, array.rows, "rows"), (cols_dim, array.cols, "columns")):
            if name == dim and value != edge:
                raise DesimError(
                    f"{dim} lies on the array's {side} with the {array.dataflow} dataflow, {edge} at a time; "
                    f"only {temporal_dim} (in time) takes a tile size",
                    key=f"{key}.{name}",
                )


_CHOSEN: dict[tuple, Mapping] = {}
_MOST_CHOSEN = 1 << 12


def choose(mapper: Mapper, problem: Problem) -> Mapping:
    """``mapper``'s mapping for ``problem`` (named as its choice), worked out once per process for
    each distinct problem."""
    key = (mapper.name, problem.key())
    if key not in _CHOSEN:
        if len(_CHOSEN) >= _MOST_CHOSEN:
            _CHOSEN.clear()
        chosen = mapper.map(problem)
        if not isinstance(chosen, Mapping):
            raise DesimError(f"the {mapper.name} mapper returned {brief(chosen)}, not a Mapping")
        if chosen.order not in ORDERS or chosen.tile < 1 or _shape(chosen) != _shape(problem.mapping()):
            raise DesimError(
                f"the {mapper.name} mapper returned a mapping of another problem, or an impossible one "
                f"(order {chosen.order!r}, tile {chosen.tile}); build it with problem.mapping()"
            )
        _CHOSEN[key] = chosen.chosen_by(mapper.name)
    return _CHOSEN[key]


def _shape(mapping: Mapping) -> tuple:
    """What a mapping maps: the array, the dataflow and the extents."""
    return (mapping.dataflow, mapping.rows, mapping.cols, mapping.spatial_rows, mapping.spatial_cols, mapping.temporal)


def mappers() -> dict[str, type[Mapper]]:
    """The installed mappers by name (see :func:`~desim.registry.installed_mappers`), each checked."""
    found = installed_mappers()
    for name, loaded in found.items():
        if not (isinstance(loaded, type) and issubclass(loaded, Mapper)) or loaded.name != name:
            raise DesimError(f"entry point {name!r} must load a Mapper subclass whose name is {name!r}")
    return found


def get_mapper(name: str, key: str) -> Mapper:
    """The mapper called ``name``, or a DesimError (with ``key``) listing the known ones."""
    known = mappers()
    if name not in known:
        raise DesimError(f"unknown mapper {name!r} (known: {', '.join(sorted(known))})", key=key)
    return known[name]()
