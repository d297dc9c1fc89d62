"""A shared bus between on-chip buffers and main memory."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from desim import REQUEST, RESPONSE, Interconnect, Memory, Param, Port, Stat
from desim.channel import Channel
from desim.limits import MAX_LATENCY, MIN_BANDWIDTH
from desim.workload import Layer

if TYPE_CHECKING:
    import simpy

    from desim.system import System


class Bus(Interconnect):
    """A shared, half-duplex bus: every transfer crossing it queues for one channel.

    Timing model: transactions from all clients, in both directions, are served first come first
    served at ``bandwidth_bytes_per_cycle`` and arrive ``latency_cycles`` later (pipelined).
    Infinite bandwidth with zero latency makes the bus transparent, as in SCALE-Sim.
    """

    kind = "bus"

    bandwidth_bytes_per_cycle = Param(
        float,
        math.inf,
        "bytes/cycle",
        "data rate shared by all clients (inf: ideal)",
        minimum=MIN_BANDWIDTH,
        allow_inf=True,
    )
    latency_cycles = Param(int, 0, "cycles", "delay added to every transaction", minimum=0, maximum=MAX_LATENCY)

    clients = Port(RESPONSE, "buffers (or other interconnects) sending requests", multiple=True)
    memory = Port(REQUEST, "towards main memory", peer=Memory)

    bytes = Stat("bytes", "bytes carried, both directions")
    transactions = Stat("transactions", "transactions served")
    busy_cycles = Stat("cycles", "cycles spent moving data")
    queue_wait_cycles = Stat("cycles", "cycles transactions spent queued, summed over transactions")
    max_queue_depth = Stat("transactions", "most transactions queued at once")

    def elaborate(self, env: simpy.Environment, system: System) -> None:
        super().elaborate(env, system)
        self._channel = Channel(env, self.name, self.bandwidth_bytes_per_cycle, self.latency_cycles)

    def hop(self, came_from: str, going_to: str) -> Channel:
        return self._channel

    def channels(self) -> list[Channel]:
        return [self._channel]

    def begin_layer(self, layer: Layer) -> None:
        super().begin_layer(layer)
        self._channel.reset_counters()

    def end_layer(self) -> None:
        channel = self._channel
        self.bytes, self.transactions, self.busy_cycles = channel.bytes, channel.transfers, channel.busy_cycles
        self.queue_wait_cycles, self.max_queue_depth = channel.wait_cycles, channel.max_queue
