"""Stats shared by components that serve transfers from one queue (a bus, a simple DRAM)."""

from __future__ import annotations

from desim import Stat
from desim.channel import Channel


class QueueStats:
    """Declares and fills the stats of a component built around one :class:`~desim.channel.Channel`."""

    transactions = Stat("transactions", "transactions served")
    busy_cycles = Stat("cycles", "cycles spent moving data")
    queue_wait_cycles = Stat("cycles", "cycles transactions spent queued, summed over transactions")
    max_queue_depth = Stat("transactions", "most transactions queued at once")

    def copy_queue_stats(self, channel: Channel) -> None:
        self.transactions = channel.transfers
        self.busy_cycles = channel.busy_cycles
        self.queue_wait_cycles = channel.wait_cycles
        self.max_queue_depth = channel.max_queue
