"""Main memory (DRAM): one controller queue for every client, open rows, FR-FCFS or FCFS."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from desim import RESPONSE, Memory, Param, Port, Stat
from desim.channel import Channel, Transfer
from desim.limits import MAX_LATENCY, MIN_BANDWIDTH

if TYPE_CHECKING:
    import simpy

    from desim.system import System

SCHEDULERS = ("fr-fcfs", "fcfs")
MAX_BANKS = 4096
"""Most banks a DRAM may have: the controller keeps each one's open row."""


class Dram(Memory):
    """Main memory: a controller that serves every client's transactions from one queue.

    Timing model: requests are split into transactions of ``transaction_bytes``; each occupies the
    data bus for ``bytes / bandwidth`` cycles and reaches its requester ``latency_cycles`` after
    its service (pipelined: latency does not hold the bus). Reads and writes share the bus.
    Addresses map to rows of ``row_bytes`` interleaved over ``banks``; a transaction to a row
    other than its bank's open one costs ``row_miss_cycles`` more (precharge and activate).
    ``fr-fcfs`` serves the oldest row hit first, else the oldest; ``fcfs`` strictly in arrival
    order. With ``row_miss_cycles = 0`` (the default) every transaction is a hit, both orders are
    arrival order, and this is the assumption behind SCALE-Sim's USER bandwidth mode; infinite
    bandwidth with zero latency and no row misses is ideal memory. Row misses cost their cycles
    whatever the bandwidth and latency.
    """

    kind = "dram"

    bandwidth_bytes_per_cycle = Param(
        float, math.inf, "bytes/cycle", "peak data rate (inf: ideal)", minimum=MIN_BANDWIDTH, allow_inf=True
    )
    latency_cycles = Param(int, 0, "cycles", "delay from service to arrival", minimum=0, maximum=MAX_LATENCY)
    transaction_bytes = Param(int, 4096, "bytes", "size of one transaction", minimum=1)
    scheduling = Param(str, "fr-fcfs", choices=SCHEDULERS, description="order of service among queued transactions")
    banks = Param(int, 8, "banks", "banks that rows interleave over", minimum=1, maximum=MAX_BANKS)
    row_bytes = Param(int, 2048, "bytes", "size of a row (page)", minimum=1)
    row_miss_cycles = Param(
        int, 0, "cycles", "extra service for a transaction whose row is not open", minimum=0, maximum=MAX_LATENCY
    )

    clients = Port(RESPONSE, "requests from buffers and interconnects", multiple=True)

    tensor_read_bytes = Stat("bytes", "bytes read, by tensor (tensor: bytes)", initial={})
    tensor_write_bytes = Stat("bytes", "bytes written, by tensor (tensor: bytes)", initial={})
    row_hits = Stat("transactions", "transactions to an open row")
    row_misses = Stat("transactions", "transactions that opened a row")
    busy_percent = Stat("%", "share of the layer's cycles the data bus was busy")
    avg_queue_depth = Stat("transactions", "mean transactions waiting (total wait / layer cycles)")

    def elaborate(self, env: simpy.Environment, system: System) -> None:
        super().elaborate(env, system)
        self._channel = _Controller(self, env)

    def hop(self) -> Dram:
        return self

    def channels(self) -> list[Channel]:
        return [self._channel]

    def stall_causes(self) -> list[str]:
        return self._channel.stall_causes()

    def submit(self, transfer: Transfer) -> None:
        request = transfer.owner
        if request.is_write:
            self.write_bytes += transfer.nbytes
            by_tensor = self.tensor_write_bytes
        else:
            self.read_bytes += transfer.nbytes
            by_tensor = self.tensor_read_bytes
        tensor = request.tile.tensor
        by_tensor[tensor] = by_tensor.get(tensor, 0) + transfer.nbytes
        self._channel.submit(transfer)

    def peak_bytes_per_cycle(self) -> float:
        return self.bandwidth_bytes_per_cycle

    def end_layer(self) -> None:
        super().end_layer()
        channel = self._channel
        self.row_hits, self.row_misses = channel.hits, channel.misses
        elapsed = self.env.now - self.layer_start
        if elapsed > 0:
            self.busy_percent = 100 * channel.busy_cycles / elapsed
            self.avg_queue_depth = channel.wait_cycles / elapsed


class _Controller(Channel):
    """The DRAM's queue and data bus, with open rows and the chosen order of service."""

    def __init__(self, dram: Dram, env: simpy.Environment) -> None:
        # Row misses make service longer than the bytes need, even at unlimited bandwidth.
        super().__init__(
            env,
            dram.name,
            dram.bandwidth_bytes_per_cycle,
            dram.latency_cycles,
            variable_service=dram.row_miss_cycles > 0,
        )
        self.banks, self.row_bytes = dram.banks, dram.row_bytes
        self.miss_ticks = dram.row_miss_cycles * self._ticks_per_cycle
        self.first_ready = dram.scheduling == "fr-fcfs" and self.miss_ticks > 0
        self.open_rows = [-1] * dram.banks

    def reset_counters(self) -> None:
        super().reset_counters()
        self.hits = self.misses = 0

    def lane(self, transfer: Transfer) -> str:
        return f"bank {transfer.address // self.row_bytes % self.banks}"

    def _pick(self) -> Transfer:
        queue = self._queue
        if self.first_ready:
            open_rows, banks, row_bytes = self.open_rows, self.banks, self.row_bytes
            for i, transfer in enumerate(queue):
                row = transfer.address // row_bytes
                if open_rows[row % banks] == row:
                    del queue[i]
                    return transfer
        return queue.popleft()

    def _extra_ticks(self, transfer: Transfer) -> int:
        if not self.miss_ticks:  # rows cost nothing: every transaction is a hit, wherever it lands
            self.hits += 1
            return 0
        row = transfer.address // self.row_bytes
        bank = row % self.banks
        if self.open_rows[bank] == row:
            self.hits += 1
            return 0
        self.open_rows[bank] = row
        self.misses += 1
        return self.miss_ticks
