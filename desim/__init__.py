"""desim: a discrete-event simulator of DNN accelerators on SimPy, numpy and networkx.

The engine (this package) knows components, params, ports, stats, links, routes and the
simulation loop, and nothing about systolic arrays or DRAM; the stock hardware lives in
``desim.components`` and registers through the ``desim.components`` entry-point group. What a
component of your own needs is importable from here: the roles, ``Param``/``Port``/``Stat``,
``Channel`` (a queue with a bandwidth and latency), ``Tile`` (what a request moves) and
``resume_after`` (serve a transfer by requests of your own further down).
"""

from typing import Any

from desim.component import Buffer, Component, Compute, Interconnect, Memory, ProcessGenerator
from desim.errors import DesimError
from desim.params import REQUIRED, Param
from desim.ports import REQUEST, RESPONSE, Port
from desim.stats import Stat
from desim.workload import OPERANDS, Layer

__version__ = "0.1.0"

_LAZY = {
    "Channel": "desim.channel",
    "Tile": "desim.data",
    "resume_after": "desim.route",
    "Staging": "desim.staging",
    "StagingPlan": "desim.staging",
}
"""What a component may need beyond the roles, imported when first asked for (numpy is slow to load)."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'desim' has no attribute {name!r}")


__all__ = [
    "OPERANDS",
    "REQUEST",
    "REQUIRED",
    "RESPONSE",
    "Buffer",
    "Channel",
    "Component",
    "Compute",
    "DesimError",
    "Interconnect",
    "Layer",
    "Memory",
    "Param",
    "Port",
    "ProcessGenerator",
    "Staging",
    "StagingPlan",
    "Stat",
    "Tile",
    "__version__",
    "resume_after",
]
