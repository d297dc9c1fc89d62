"""Where a DRAM device meets simulated time: transfers in, completions out, one wake per completion.

A controller model (:mod:`~desim.components.memory.dram_controller`, burst by burst, or
:mod:`~desim.components.memory.dram_rows`, by row runs) works in memory cycles and only advances
when told. This port hands it each transfer at the memory cycle of its arrival (``ceil(now /
r)``, ``r`` the system cycles per memory cycle, an exact fraction of ``tCK_ns`` and
``clock_mhz``) and asks it when it next needs looking at (``next_event``): the burst model runs
ahead as if nothing else will arrive, to its first completion, and rolls back when something
does; the row model says the earliest cycle at which anything it holds could complete. The port
sleeps until then (one SimPy event, none per DRAM command), delivers what has completed, and
asks again. When it looks changes nothing of what the model decides (tested), so results are
those of stepping cycle by cycle, whatever the order in which clients hand things over.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING, NamedTuple

from desim.components.memory.dram_controller import DramController, Organisation, Owner, Served, Settings
from desim.components.memory.dram_rows import RowController
from desim.components.memory.dram_timing import DramTiming

if TYPE_CHECKING:
    import simpy

    from desim.channel import Transfer
    from desim.component import Component


class DramPassage(NamedTuple):
    """How a transfer crossed a DRAM device: the times (system cycles) its last burst reached
    each stage, and the labels its waits are charged to."""

    port: DramPort
    arrived: float
    accepted: float
    taken: float
    issued: float
    data: float
    done: float
    how: int
    held: int

    @property
    def handed_over(self) -> float:
        """When the controller took the last burst in (before that, its queue was full)."""
        return self.accepted

    def segments(self) -> list[tuple[str, float]]:
        port, out = self.port, []
        commands = port.refresh_label if self.held == Served.REFRESH else port.how_labels[self.how]
        for label, start, end in (
            (port.full_label, self.arrived, self.accepted),
            (port.held_labels[self.held], self.accepted, self.taken),
            (commands, self.taken, self.issued),
            (port.latency_label, self.issued, self.data),
            (port.transfer_label, self.data, self.done),
        ):
            if end > start:
                out.append((label, end - start))
        return out


class DramPort:
    """The hop a DRAM's transfers are submitted to when it models a device."""

    def __init__(
        self,
        dram: Component,
        env: simpy.Environment,
        clock_mhz: float,
        timing: DramTiming,
        organisation: Organisation,
        settings: Settings,
        by_rows: bool = False,
    ) -> None:
        self.env = env
        self.dram = dram
        self.name = dram.name
        self.timing = timing
        self.organisation = organisation
        self.controller = (RowController if by_rows else DramController)(timing, organisation, settings)
        # System cycles per memory cycle, exactly as the decimals were written.
        self.ratio = Fraction(repr(float(timing.tCK_ns))) * Fraction(repr(float(clock_mhz))) / 1000
        self._per, self._memory = self.ratio.numerator, self.ratio.denominator
        """``per`` system cycles are ``memory`` memory cycles."""
        self._ratio = float(self.ratio)
        self.full_label = f"{self.name} queue full"
        self.queue_label = f"{self.name} queue"
        self.row_label = f"{self.name} row conflict"
        self.latency_label = f"{self.name} latency"
        self.transfer_label = f"{self.name} transfer"
        self.miss_label = f"{self.name} row miss"
        self.how_labels = {Served.HIT: self.queue_label, Served.OPENED: self.miss_label}
        self.how_labels[Served.CONFLICT] = self.row_label
        self.bank_label = f"{self.name} bank busy"
        self.refresh_label = f"{self.name} refresh"
        self.turnaround_label = f"{self.name} turnaround"
        self.held_labels = {
            Served.NOTHING: self.queue_label,
            Served.BANK: self.bank_label,
            Served.REFRESH: self.refresh_label,
            Served.DRAIN: self.turnaround_label,
        }
        self._wake_at = math.inf
        """When the soonest wake asked for falls (system cycles)."""
        self._pending = False
        self._transfers: dict[Owner, Transfer] = {}
        self.reset_counters()

    def stall_causes(self) -> list[str]:
        return [
            self.full_label,
            self.queue_label,
            self.bank_label,
            self.refresh_label,
            self.turnaround_label,
            self.row_label,
            self.miss_label,
            self.latency_label,
            self.transfer_label,
        ]

    def peak_bytes_per_cycle(self) -> float:
        org = self.organisation
        per_cycle = org.burst_bytes / self.timing.burst_cycles * org.channels
        return float(per_cycle / self.ratio)

    def reset_counters(self) -> None:
        """A layer begins: counts start afresh, and the banks' activity is recorded if it is traced."""
        self.controller.advance(self._memory_cycle(self.env.now))  # in step, so nothing recorded is undone
        self.controller.activity = [] if self.dram.trace is not None else None
        self.transfers = 0
        self._waited = self._transit = 0.0
        self._most = len(self._transfers)
        self._counts = list(self._served_counts())
        self._refreshes = sum(channel.refreshes for channel in self.controller.channels)

    def _served_counts(self) -> list[int]:
        return [sum(channel.served_counts[i] for channel in self.controller.channels) for i in range(3)]

    def end_layer(self) -> None:
        """A layer ends: the device's own figures, and those every memory reports, into its stats."""
        dram = self.dram
        self.controller.advance(self._memory_cycle(self.env.now))  # what it did unwatched (a drain) counts too
        if self.controller.activity:
            self._draw(self.controller.activity)
        hits, misses, conflicts = (now - then for now, then in zip(self._served_counts(), self._counts, strict=True))
        dram.row_hits, dram.row_misses, dram.row_conflicts = hits, misses, conflicts
        dram.refreshes = sum(channel.refreshes for channel in self.controller.channels) - self._refreshes
        dram.transactions = self.transfers
        # The figures every memory reports: the data bus's busy cycles (a channel's on average),
        # the wait to be served and the time through, summed over transfers; the most in flight.
        bursts = hits + misses
        dram.busy_cycles = float(bursts * self.timing.burst_cycles * self.ratio / self.organisation.channels)
        dram.queue_wait_cycles = self._waited
        dram.max_queue_depth = self._most
        if self.transfers:
            dram.avg_latency_cycles = self._transit / self.transfers

    # -- time --------------------------------------------------------------------------------

    def _memory_cycle(self, now: float) -> int:
        return -(-int(now) * self._memory // self._per)

    def _system_cycle(self, cycle: float) -> int:
        return -(-int(cycle) * self._per // self._memory)

    def submit(self, transfer: Transfer) -> None:
        self.transfers += 1
        now = self.env.now
        transfer.submitted_at = int(now)
        at = self._memory_cycle(now)
        controller = self.controller
        controller.advance(at)
        owner = controller.add(transfer.address, transfer.nbytes, transfer.owner.is_write, transfer, at)
        self._transfers[owner] = transfer
        self._most = max(self._most, len(self._transfers))
        if not self._pending:  # once for everything handed over this instant
            self._pending = True
            self.env.timeout(0).callbacks.append(self._look_ahead)

    def _look_ahead(self, _event: object = None) -> None:
        """Ask the model when it next needs looking at, and make sure to wake by then.

        Nothing else in the simulation happens before its next scheduled event, so until then
        (and short of a completion, which may resume a requester) the model runs on here, where
        a wake would only have found nothing due and looked again. A wake that finds nothing due
        looks again too, so one already asked for earlier stands.
        """
        self._pending = False
        controller, env = self.controller, self.env
        now, upcoming = int(env.now), env.peek()
        horizon = self._memory_cycle(upcoming) if upcoming < math.inf else math.inf
        if horizon > controller.clk:
            controller.advance(horizon, stop_at_completion=True)
        due = controller.next_event()
        if due < math.inf:
            when = max(now, self._system_cycle(due))
            if when < self._wake_at:
                self._wake_at = when
                env.timeout(when - now).callbacks.append(self._wake)

    def _wake(self, _event: object) -> None:
        if self.env.now != self._wake_at:
            return  # a sooner wake has looked again since this one was asked for
        self._wake_at = math.inf
        controller = self.controller
        now = self.env.now
        controller.advance(self._memory_cycle(now))
        if controller.activity:
            self._draw(controller.activity)
        finished = controller.completed(int(now) * self._memory // self._per)
        for _, owner, last in finished:
            transfer = self._transfers.pop(owner)
            transfer.log.append(self._passage(transfer, last))
        for _, owner, _ in finished:  # first: a requester resumed now may hand over more now
            owner.token.advance()
        self._look_ahead()

    def _draw(self, activity: list[tuple]) -> None:
        """Put what the banks did (runs or bursts, and refreshes) on the trace, a track per bank."""
        trace, ratio, org = self.dram.trace, self.ratio, self.organisation
        if trace is not None:
            for channel, rank, bank, start, end, item in activity:
                where = (f"channel {channel} " if org.channels > 1 else "") + (f"rank {rank} " if org.ranks > 1 else "")
                if item is None:
                    trace.slice(self.name, f"{where}refresh", "refresh", float(start * ratio), float(end * ratio))
                    continue
                transfer = item.owner.token
                tensor = getattr(getattr(transfer.owner, "tile", None), "tensor", None)
                name = f"{'write' if item.is_write else 'read'} {tensor or ''}".rstrip()
                row = f"row {item.row}"
                trace.slice(self.name, f"{where}bank {bank}", name, float(start * ratio), float(end * ratio), row=row)
        activity.clear()

    def _passage(self, transfer: Transfer, served: Served) -> DramPassage:
        ratio = self._ratio  # a float will do: these times only split a wait among its causes
        arrived = float(transfer.submitted_at)
        accepted = max(arrived, served.accepted * ratio)
        taken = max(accepted, served.taken * ratio)
        issued = max(taken, served.issued * ratio)
        done = float(self.env.now)
        data = min(done, max(issued, (served.issued + self.timing.CL) * ratio))
        self._waited += issued - arrived
        self._transit += done - arrived
        return DramPassage(self, arrived, accepted, taken, issued, data, done, served.how, served.held)
