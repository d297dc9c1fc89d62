"""The workload: layers seen as GEMMs, keeping the conv geometry that decides which bytes they touch.

A layer multiplies IFMAP ``M x K`` by FILTER ``K x N`` into OFMAP ``M x N``: ``M`` output pixels,
``K = R*S*C`` window elements, ``N`` filters. Input height and width are taken as already padded
(SCALE-Sim's convention), so ``E = ceil((H - R + stride) / stride)``; when the stride does not
divide ``H - R`` the last window overhangs the input edge, and its overhang reads nothing. A GEMM
``M, N, K`` is the conv ``H=M, W=K, R=1, S=K, C=1, N filters, stride 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from desim.errors import DesimError
from desim.limits import MAX_OPERAND_ELEMENTS
from desim.params import brief, parse_int

OPERANDS = ("ifmap", "filter", "ofmap")
"""The three operands of a layer, in report order."""
INTER_LAYER = ("cold", "forward")
"""Whether each layer starts from empty storage (SCALE-Sim's assumption) or a layer's outputs
still held on chip are the next layer's inputs."""
SPLITS = ("every", "n", "m")
"""How a layer's work is shared among compute units: each runs all of it, or a share of its output
channels (``n``) or of its output rows (``m``)."""


@dataclass(frozen=True)
class Layer:
    """One conv or GEMM layer. Build GEMMs with :meth:`Layer.gemm`."""

    name: str
    ifmap_height: int
    ifmap_width: int
    filter_height: int
    filter_width: int
    channels: int
    num_filters: int
    stride_height: int = 1
    stride_width: int = 1
    line: int | None = field(default=None, compare=False)
    """The topology file's line that described the layer, for error messages (not part of its shape)."""

    @classmethod
    def gemm(cls, name: str, m: int, n: int, k: int, line: int | None = None) -> Layer:
        """The layer computing an ``M x K`` by ``K x N`` matrix product."""
        return cls(name, m, k, 1, k, 1, n, 1, 1, line)

    def check(self) -> None:
        """Raise DesimError naming the first field that makes this layer impossible."""
        for name in (
            "ifmap_height",
            "ifmap_width",
            "filter_height",
            "filter_width",
            "channels",
            "num_filters",
            "stride_height",
            "stride_width",
        ):
            value = getattr(self, name)
            if not 1 <= value <= MAX_OPERAND_ELEMENTS:
                raise DesimError(
                    f"{name} must be a positive integer up to {MAX_OPERAND_ELEMENTS:,}, got {value}", key=self.name
                )
        if self.filter_height > self.ifmap_height:
            raise DesimError(
                f"filter height {self.filter_height} is larger than the ifmap height {self.ifmap_height}",
                key=self.name,
            )
        if self.filter_width > self.ifmap_width:
            raise DesimError(
                f"filter width {self.filter_width} is larger than the ifmap width {self.ifmap_width}",
                key=self.name,
            )
        for operand, elements in (
            ("IFMAP", self.ifmap_elements),
            ("FILTER", self.k * self.n),
            ("OFMAP", self.m * self.n),
        ):
            if elements > MAX_OPERAND_ELEMENTS:
                raise DesimError(
                    f"the {operand} has {elements:,} elements; desim simulates layers whose operands "
                    f"have at most {MAX_OPERAND_ELEMENTS:,}",
                    key=self.name,
                )

    @property
    def shape(self) -> tuple[int, ...]:
        """What the simulation depends on: every field but the name (layers of one shape run alike)."""
        return (
            self.ifmap_height,
            self.ifmap_width,
            self.filter_height,
            self.filter_width,
            self.channels,
            self.num_filters,
            self.stride_height,
            self.stride_width,
        )

    @property
    def ofmap_height(self) -> int:
        return -(-(self.ifmap_height - self.filter_height) // self.stride_height) + 1

    @property
    def ofmap_width(self) -> int:
        return -(-(self.ifmap_width - self.filter_width) // self.stride_width) + 1

    @property
    def m(self) -> int:
        """Output pixels: rows of the IFMAP and OFMAP matrices."""
        return self.ofmap_height * self.ofmap_width

    @property
    def k(self) -> int:
        """Window size: columns of IFMAP, rows of FILTER."""
        return self.filter_height * self.filter_width * self.channels

    @property
    def n(self) -> int:
        """Filters: columns of FILTER and OFMAP."""
        return self.num_filters

    @property
    def macs(self) -> int:
        return self.m * self.n * self.k

    @property
    def ifmap_elements(self) -> int:
        """Distinct input elements of the whole layer."""
        return self.ifmap_height * self.ifmap_width * self.channels

    def reads_output_of(self, previous: Layer) -> bool:
        """Whether this layer's input is exactly ``previous``'s output: its ``E x F x N`` OFMAP,
        laid out as this layer's ``H x W x C`` IFMAP (not so after padding or pooling between them)."""
        return (previous.ofmap_height, previous.ofmap_width, previous.n) == (
            self.ifmap_height,
            self.ifmap_width,
            self.channels,
        )


@dataclass(frozen=True)
class Chain:
    """How a layer's data meets its neighbours' when they run with ``inter_layer: forward``."""

    previous: Layer | None = None
    """The layer whose OFMAP is this layer's IFMAP: whatever of it a level still holds is already in."""
    next: Layer | None = None
    """The layer whose IFMAP is this layer's OFMAP: a level that can hold it for that layer may
    keep it instead of writing it down."""

    @classmethod
    def of(cls, workload: Sequence[Layer], index: int, inter_layer: str) -> Chain:
        """Layer ``index``'s chain in ``workload`` (none at all with ``inter_layer: cold``)."""
        if inter_layer != "forward":
            return cls()
        layer = workload[index]
        previous = workload[index - 1] if index > 0 else None
        following = workload[index + 1] if index + 1 < len(workload) else None
        return cls(
            previous if previous is not None and layer.reads_output_of(previous) else None,
            following if following is not None and following.reads_output_of(layer) else None,
        )


@dataclass(frozen=True)
class Share:
    """The part of a layer's GEMM one compute unit runs: output rows ``[m_start, m_stop)`` and output
    channels ``[n_start, n_stop)``, with all of ``K``. Its tiles keep their place in the layer's tensors."""

    m_start: int
    m_stop: int
    n_start: int
    n_stop: int

    @classmethod
    def whole(cls, layer: Layer) -> Share:
        return cls(0, layer.m, 0, layer.n)

    @property
    def m(self) -> int:
        return self.m_stop - self.m_start

    @property
    def n(self) -> int:
        return self.n_stop - self.n_start

    @property
    def empty(self) -> bool:
        return self.m <= 0 or self.n <= 0


def split_layer(layer: Layer, units: int, split: str) -> list[Share]:
    """Each of ``units`` compute units' share of ``layer`` under the policy ``split`` (see ``SPLITS``).

    ``n`` and ``m`` share the output channels or rows out in near-equal runs, in unit order; a
    unit whose run is empty (more units than channels) sits the layer out.
    """
    whole = Share.whole(layer)
    if split == "every" or units == 1:
        return [whole] * units
    if split == "n":
        return [Share(0, layer.m, layer.n * i // units, layer.n * (i + 1) // units) for i in range(units)]
    if split == "m":
        return [Share(layer.m * i // units, layer.m * (i + 1) // units, 0, layer.n) for i in range(units)]
    raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")


def select_layers(spec: str, layers: Sequence[Layer], *, key: str = "layers") -> set[int]:
    """The indices ``spec`` names: comma-separated layer indices, inclusive ranges ``a-b``, or names.

    Raises:
        DesimError: a part names no layer of ``layers``; the error's key is ``key``.
    """
    names = {layer.name: index for index, layer in enumerate(layers)}
    last = len(layers) - 1
    chosen: set[int] = set()
    for part in (piece.strip() for piece in spec.split(",")):
        if part in names:
            chosen.add(names[part])
            continue
        low, dash, high = part.partition("-")
        first, final = parse_int(low), parse_int(high) if dash else parse_int(low)
        if first is not None and final is not None and 0 <= first <= final <= last and low.strip().isdigit():
            chosen.update(range(first, final + 1))
            continue
        raise DesimError(
            f"{brief(part)} names no layer: expected an index or range a-b within 0-{last}, or a layer name",
            key=key,
        )
    return chosen
