"""desim: a discrete-event simulator of DNN accelerators on SimPy, numpy and networkx.

The engine (this package) knows components, params, ports, stats, links, routes and the
simulation loop, and nothing about systolic arrays or DRAM; the stock hardware lives in
``desim.components`` and registers through the ``desim.components`` entry-point group.
"""

from desim.component import Buffer, Component, Compute, Interconnect, Memory, ProcessGenerator
from desim.errors import DesimError
from desim.params import REQUIRED, Param
from desim.ports import REQUEST, RESPONSE, Port
from desim.stats import Stat
from desim.workload import OPERANDS, Layer

__version__ = "0.1.0"

__all__ = [
    "OPERANDS",
    "REQUEST",
    "REQUIRED",
    "RESPONSE",
    "Buffer",
    "Component",
    "Compute",
    "DesimError",
    "Interconnect",
    "Layer",
    "Memory",
    "Param",
    "Port",
    "ProcessGenerator",
    "Stat",
    "__version__",
]
