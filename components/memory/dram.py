"""Main memory (DRAM): a JEDEC device behind a controller (``preset``), or a bandwidth pipe."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from desim import RESPONSE, Memory, Param, Port, Stat
from desim.channel import Channel, Transfer
from desim.components.memory.dram_port import DramPort
from desim.components.memory.dram_presets import PRESETS, device
from desim.errors import DesimError
from desim.limits import MAX_LATENCY, MIN_BANDWIDTH

if TYPE_CHECKING:
    import simpy

    from desim.system import System

SCHEDULERS = ("fr-fcfs", "fcfs")
DEVICE_KEYS = (
    "tCK_ns", "CL", "CWL", "tRCD", "tRCDRD", "tRCDWR", "tRP", "tRAS", "tCCD_S", "tCCD_L", "tRRD_S", "tRRD_L",
    "tFAW", "tWTR_S", "tWTR_L", "tWR", "tRTP", "tRTRS", "tRPRE", "tWPRE", "tREFI", "tRFC", "channel_count", "ranks",
    "bankgroups", "banks_per_group", "rows", "columns", "bus_bits", "burst_length", "address_mapping",
    "row_policy", "scheduler", "row_hit_cap", "transaction_queue", "command_queue", "queue_structure",
    "write_drain_low", "dual_command",
)  # fmt: skip
"""The parameters a device preset sets (each may be overridden)."""
_DEVICE_NAME = {"channel_count": "channels"}
"""Params named apart from the device's key (``channels()`` is every component's method)."""
MAX_BANKS = 4096
"""Most banks a DRAM may have: the controller keeps each one's open row."""


PIPE = "pipe"
GRANULARITIES = ("auto", "burst", "row")


MAX_DEVICE_CYCLES = 1 << 20
"""Longest timing a device parameter may give (memory cycles): JEDEC's are at most tens of thousands."""
PIPE_KEYS = ("bandwidth_bytes_per_cycle", "latency_cycles", "scheduling", "banks", "row_bytes", "row_miss_cycles")
"""The pipe's own parameters, which a device preset does not use."""


def _cycles(description: str) -> Param:
    return Param(int, None, "cycles", description, minimum=0, maximum=MAX_DEVICE_CYCLES)


class Dram(Memory):
    """Main memory: a DRAM device and its controller, or (``preset: pipe``) a bandwidth pipe.

    With a device ``preset`` (``ddr3-1600``, ``ddr4-2400``, ``ddr4-3200``, ``lpddr4-3200``,
    ``hbm2``), every bank keeps its state and the controller queues, orders and refreshes as
    :mod:`~desim.components.memory.dram_controller` says; any of the device's timing (memory
    clock cycles), organisation and controller settings may be overridden by its name. Requests
    are split into bursts; the DRAM clock (``tCK_ns``) and the system's (``clock_mhz``) are
    converted exactly. ``granularity: burst`` schedules every command; ``row`` schedules a
    request's bursts to one row as a run (:mod:`~desim.components.memory.dram_rows`: far
    faster on kilobyte transactions, close to ``burst`` on them); ``auto`` takes ``burst`` when
    a transaction is one burst, else ``row``.

    The pipe (the default, and what a SCALE-Sim ``.cfg`` maps to): requests are split into
    transactions of ``transaction_bytes``; each occupies the
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
    preset = Param(str, PIPE, choices=(PIPE, *PRESETS), description="a DRAM device, or pipe: a bandwidth and a latency")
    tCK_ns = Param(float, None, "ns", "the memory clock period (device presets)", minimum=0.01, maximum=1000)
    CL = _cycles("read command to data")
    CWL = _cycles("write command to data")
    tRCD = _cycles("activate to read or write")
    tRCDRD = _cycles("activate to read, where it differs from tRCD")
    tRCDWR = _cycles("activate to write, where it differs from tRCD")
    tRP = _cycles("precharge to activate")
    tRAS = _cycles("activate to precharge")
    tCCD_S = _cycles("column command to column command, other bank group")
    tCCD_L = _cycles("column command to column command, same bank group")
    tRRD_S = _cycles("activate to activate, other bank group")
    tRRD_L = _cycles("activate to activate, same bank group")
    tFAW = _cycles("window holding at most four activates of a rank")
    tWTR_S = _cycles("end of write data to read, other bank group")
    tWTR_L = _cycles("end of write data to read, same bank group")
    tWR = _cycles("end of write data to precharge")
    tRTP = _cycles("read to precharge")
    tRTRS = _cycles("rank to rank switch")
    tRPRE = _cycles("read preamble")
    tWPRE = _cycles("write preamble")
    tREFI = _cycles("refresh interval of each rank")
    tRFC = _cycles("refresh to activate")
    channel_count = Param(int, None, "channels", "independent channels (DRAMsim3's channels)", minimum=1, maximum=64)
    ranks = Param(int, None, "ranks", "ranks per channel", minimum=1, maximum=16)
    bankgroups = Param(int, None, "groups", "bank groups per rank", minimum=1, maximum=16)
    banks_per_group = Param(int, None, "banks", "banks per bank group", minimum=1, maximum=64)
    rows = Param(int, None, "rows", "rows per bank", minimum=1, maximum=1 << 24)
    columns = Param(int, None, "columns", "bus-wide columns per row", minimum=1, maximum=1 << 16)
    bus_bits = Param(int, None, "bits", "data bus width of a channel", minimum=8, maximum=1024)
    burst_length = Param(int, None, "beats", "beats of a burst", minimum=1, maximum=64)
    address_mapping = Param(str, None, description="fields from most to least significant: ro ch ra ba bg co")
    row_policy = Param(str, None, choices=("open", "closed"), description="keep a row open after use, or close it")
    scheduler = Param(str, None, choices=SCHEDULERS, description="order of service within a bank's queue")
    row_hit_cap = Param(int, None, "hits", "row hits after which an older miss may close the row", minimum=1)
    transaction_queue = Param(int, None, "transactions", "reads (and writes) a channel holds", minimum=1)
    command_queue = Param(int, None, "commands", "commands per bank (or rank) queue", minimum=1)
    queue_structure = Param(str, None, choices=("per-bank", "per-rank"), description="command queues per bank or rank")
    write_drain_low = Param(int, None, "writes", "writes that start a drain once reads run out", minimum=1)
    dual_command = Param(bool, None, description="a row and a column command in one cycle (HBM)")
    granularity = Param(
        str,
        "auto",
        choices=GRANULARITIES,
        description="what the controller schedules: every burst, or runs of a row's bursts (auto: bursts when "
        "transactions are one burst, else rows)",
    )

    clients = Port(RESPONSE, "requests from buffers and interconnects", multiple=True)

    tensor_read_bytes = Stat("bytes", "bytes read, by tensor (tensor: bytes)", initial={})
    tensor_write_bytes = Stat("bytes", "bytes written, by tensor (tensor: bytes)", initial={})
    row_hits = Stat(
        "transactions",
        "transactions to an open row (with a preset: bursts to a row already read or written since it opened)",
    )
    row_misses = Stat(
        "transactions", "transactions that opened a row (with a preset: the first burst after each activate)"
    )
    row_conflicts = Stat("precharges", "with a preset: rows closed for a request to another row (each then activated)")
    refreshes = Stat("refreshes", "refresh commands (device presets)")
    busy_percent = Stat("%", "share of the layer's cycles the data bus was busy (of every channel's, with a preset)")
    avg_queue_depth = Stat("transactions", "mean transactions waiting to be served (total wait / layer cycles)")

    def __init__(self, name: str, params: dict | None = None) -> None:
        super().__init__(name, params)
        self.device = None
        """The device's (timing, organisation, settings), with a preset."""
        given = dict(params or {})
        if self.preset == PIPE:
            unused = [key for key in (*DEVICE_KEYS, "granularity") if key in given]
            if unused:
                raise DesimError(
                    "is a device parameter: set a preset (ddr4-3200, hbm2, ...) to use it", key=f"{name}.{unused[0]}"
                )
            return
        unused = [key for key in PIPE_KEYS if key in given]
        if unused:
            raise DesimError(
                f"is a parameter of the bandwidth pipe, which preset {self.preset!r} replaces",
                key=f"{name}.{unused[0]}",
            )
        preset = PRESETS[self.preset]
        values = {}
        for key in DEVICE_KEYS:
            given, field = getattr(self, key), _DEVICE_NAME.get(key, key)
            values[field] = given if given is not None else preset.get(field)
        try:
            self.device = device({key: value for key, value in values.items() if value is not None})
        except ValueError as error:  # the message starts with the field it is about
            field = str(error).split()[0]
            key = next((key for key in DEVICE_KEYS if _DEVICE_NAME.get(key, key) == field), None)
            raise DesimError(str(error), key=f"{name}.{key}" if key else name) from None
        timing, organisation = self.device[0], self.device[1]
        banks = organisation.channels * timing.ranks * timing.banks
        if banks > MAX_BANKS:
            raise DesimError(
                f"has {banks:,} banks over its channels and ranks; desim keeps at most {MAX_BANKS:,}", key=name
            )

    def elaborate(self, env: simpy.Environment, system: System) -> None:
        super().elaborate(env, system)
        if self.device is None:
            self._channel = _Controller(self, env)
        else:
            by_rows = self.granularity == "row" or (
                self.granularity == "auto" and self.transaction_bytes > self.device[1].burst_bytes
            )
            self._channel = DramPort(self, env, system.clock_mhz, *self.device, by_rows=by_rows)

    def hop(self) -> Dram:
        return self

    def channels(self) -> list[Channel]:
        return [self._channel] if self.device is None else []

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
        if self.device is not None:
            return self._channel.peak_bytes_per_cycle()
        return self.bandwidth_bytes_per_cycle

    def begin_layer(self, layer) -> None:
        super().begin_layer(layer)
        if self.device is not None:
            self._channel.reset_counters()

    def end_layer(self) -> None:
        super().end_layer()
        channel = self._channel
        if self.device is not None:
            channel.end_layer()
        else:
            self.row_hits, self.row_misses = channel.hits, channel.misses
        elapsed = self.env.now - self.layer_start
        if elapsed > 0:
            self.busy_percent = 100 * self.busy_cycles / elapsed
            self.avg_queue_depth = self.queue_wait_cycles / elapsed


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
