"""Main memory (DRAM) in its simple mode: one queue, a bandwidth and a latency."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from desim import RESPONSE, Memory, Param, Port, Stat
from desim.channel import Channel, Transfer
from desim.components.queue_stats import QueueStats
from desim.workload import Layer

if TYPE_CHECKING:
    import simpy

    from desim.system import System


class Dram(QueueStats, Memory):
    """Main memory serving every client from one FIFO queue at a fixed bandwidth and latency.

    Timing model: requests are split into transactions of ``transaction_bytes``; each occupies the
    data bus for ``bytes / bandwidth`` cycles, in arrival order whichever client sent it, and
    reaches its requester ``latency_cycles`` after its service (the latency is pipelined, so it
    does not hold the bus). Reads and writes share the bus. This is the assumption behind
    SCALE-Sim's USER bandwidth mode; infinite bandwidth with zero latency is ideal memory.
    """

    kind = "dram"

    bandwidth_bytes_per_cycle = Param(
        float, math.inf, "bytes/cycle", "peak data rate (inf: ideal)", positive=True, allow_inf=True
    )
    latency_cycles = Param(int, 0, "cycles", "delay from service to arrival", minimum=0)
    transaction_bytes = Param(int, 4096, "bytes", "size of one transaction", minimum=1)

    clients = Port(RESPONSE, "requests from buffers and interconnects", multiple=True)

    read_bytes = Stat("bytes", "bytes read")
    write_bytes = Stat("bytes", "bytes written")

    def elaborate(self, env: simpy.Environment, system: System) -> None:
        super().elaborate(env, system)
        self._channel = Channel(env, self.name, self.bandwidth_bytes_per_cycle, self.latency_cycles)

    def hop(self) -> Dram:
        return self

    def submit(self, transfer: Transfer) -> None:
        if transfer.owner.is_write:
            self.write_bytes += transfer.nbytes
        else:
            self.read_bytes += transfer.nbytes
        self._channel.submit(transfer)

    def begin_layer(self, layer: Layer) -> None:
        super().begin_layer(layer)
        self._channel.reset_counters()

    def end_layer(self) -> None:
        self.copy_queue_stats(self._channel)
