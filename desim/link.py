"""Links: the edges of the system graph, each with its own bandwidth and latency per direction."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from desim.channel import Channel
from desim.errors import DesimError
from desim.limits import MAX_LATENCY, MIN_BANDWIDTH
from desim.params import Param

if TYPE_CHECKING:
    import simpy

LINK_PARAMS = {
    "bandwidth_bytes_per_cycle": Param(
        float, math.inf, "bytes/cycle", "data rate in each direction", minimum=MIN_BANDWIDTH, allow_inf=True
    ),
    "latency_cycles": Param(int, 0, "cycles", "delay added to every transfer", minimum=0, maximum=MAX_LATENCY),
}
for _name, _param in LINK_PARAMS.items():
    _param.name = _name


@dataclass
class Link:
    """A full-duplex connection from a request port (``src.src_port``) to a response port.

    Each direction gets its own channel, so reads flowing back and writes flowing forward do
    not queue behind each other on a link (they may still meet on a shared bus).
    """

    src: str
    src_port: str
    dst: str
    dst_port: str
    bandwidth_bytes_per_cycle: float = math.inf
    latency_cycles: int = 0
    forward: Channel | None = field(default=None, repr=False)
    backward: Channel | None = field(default=None, repr=False)

    @classmethod
    def from_attrs(cls, src: str, dst: str, attrs: dict) -> Link:
        """Build from graph-edge attributes, checking the link's own parameters."""
        where = f"{src}.{attrs.get('src_port')}->{dst}.{attrs.get('dst_port')}"
        values = {}
        for name, param in LINK_PARAMS.items():
            try:
                values[name] = param.coerce(attrs.get(name, param.default))
            except DesimError as error:
                raise DesimError(f"{name}: {error.message}", key=where) from None
        unknown = set(attrs) - set(LINK_PARAMS) - {"src_port", "dst_port"}
        if unknown:
            raise DesimError(
                f"unknown link attribute(s) {', '.join(sorted(unknown))} (known: {', '.join(LINK_PARAMS)})",
                key=where,
            )
        return cls(src, attrs["src_port"], dst, attrs["dst_port"], **values)

    def is_ideal(self) -> bool:
        """Whether the link adds nothing: infinite bandwidth and no latency."""
        return math.isinf(self.bandwidth_bytes_per_cycle) and self.latency_cycles == 0

    @property
    def label(self) -> str:
        return f"{self.src}.{self.src_port}->{self.dst}.{self.dst_port}"

    def elaborate(self, env: simpy.Environment) -> None:
        bw, lat = self.bandwidth_bytes_per_cycle, self.latency_cycles
        self.forward = Channel(env, f"{self.label}", bw, lat)
        self.backward = Channel(env, f"{self.dst}.{self.dst_port}->{self.src}.{self.src_port}", bw, lat)
