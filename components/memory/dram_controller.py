"""A DRAM memory controller: address mapping, queues, scheduling and refresh, per channel.

The controller works in memory clock cycles on 64-byte-class *bursts* (bus bytes x burst
length). Requests are handed over in order into an in-order *inbox*; each burst enters its
channel's transaction queue (reads and writes apart, ``transaction_queue`` each) when there is
room, and a full queue holds everything behind it (``dram queue full``). Once a cycle per channel
a transaction moves to its bank's command queue (``command_queue`` deep): reads first, writes when
the write queue is full or reads have run out with ``write_drain_low`` writes waiting, then all
the writes then waiting. Once a cycle per channel (a column and a row command together on HBM's
two command buses) the scheduler issues the first ready command, visiting the banks round-robin
and, within a bank, the oldest ready request (``fr-fcfs``: row hits go before an older miss,
up to ``row_hit_cap`` hits after the row opened) or only the oldest (``fcfs``). Refresh comes
every ``tREFI``, staggered over the ranks: the rank's banks are precharged and its requests wait
``tRFC``. Reads complete ``CL + burst`` after their column command; writes are posted (done the
cycle after they are accepted). These are the rules of DRAMsim3's controller, whose figures
(``../shared/reference/dramsim3``) the model is checked against.

The model only advances when told (:meth:`DramController.run`) and only spends work on cycles in
which something can happen: in an idle stretch it jumps to the next cycle at which a command can
issue, a refresh falls due or a burst arrives. Its whole state can be saved and restored
(:meth:`~DramController.save`, :meth:`~DramController.restore`), so a caller may run it ahead
optimistically and roll it back when a request arrives in what it had assumed to be an empty
future.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from desim.components.memory.dram_timing import ChannelTiming, Command, DramTiming

if TYPE_CHECKING:
    from desim.components.memory.dram_rows import RowController

FIELDS = ("ch", "ra", "bg", "ba", "ro", "co")
NEVER = math.inf

READ, WRITE, ACTIVATE, PRECHARGE, REFRESH = (
    Command.READ, Command.WRITE, Command.ACTIVATE, Command.PRECHARGE, Command.REFRESH
)  # fmt: skip


@dataclass(frozen=True)
class Organisation:
    """How bytes map to a DRAM: channels, ranks, banks, rows and columns, and the address mapping."""

    channels: int
    ranks: int
    bankgroups: int
    banks_per_group: int
    rows: int
    columns: int
    bus_bits: int
    burst_length: int
    address_mapping: str

    def __post_init__(self) -> None:
        for name in ("channels", "ranks", "bankgroups", "banks_per_group", "rows", "columns", "burst_length"):
            value = getattr(self, name)
            if value & (value - 1):
                raise ValueError(f"{name} must be a power of two, got {value}")
        if self.columns < self.burst_length:
            raise ValueError(f"columns ({self.columns}) must hold a burst of burst_length ({self.burst_length})")
        if self.bus_bits % 8:
            raise ValueError(f"bus_bits must be whole bytes, got {self.bus_bits}")
        if sorted(self.fields()) != sorted(FIELDS) or len(self.address_mapping.replace(" ", "")) != 12:
            raise ValueError(f"address_mapping must name each of ro ch ra ba bg co once, got {self.address_mapping!r}")

    @property
    def burst_bytes(self) -> int:
        return self.bus_bits // 8 * self.burst_length

    def widths(self) -> dict[str, int]:
        """Bits of the burst address each field takes."""
        return {
            "ch": _log2(self.channels),
            "ra": _log2(self.ranks),
            "bg": _log2(self.bankgroups),
            "ba": _log2(self.banks_per_group),
            "ro": _log2(self.rows),
            "co": _log2(max(1, self.columns // self.burst_length)),
        }

    def fields(self) -> list[str]:
        """The mapping's fields, most significant first."""
        text = self.address_mapping.replace(" ", "")
        return [text[i : i + 2] for i in range(0, len(text), 2)]

    def decoder(self) -> tuple[tuple[str, int, int], ...]:
        """``(field, shift, mask)`` for each field, over the burst address."""
        widths, shift, out = self.widths(), 0, []
        for name in reversed(self.fields()):
            out.append((name, shift, (1 << widths[name]) - 1))
            shift += widths[name]
        return tuple(out)


def _log2(n: int) -> int:
    return max(0, n - 1).bit_length()


@dataclass(frozen=True)
class Settings:
    """The controller's own choices."""

    row_policy: str = "open"
    scheduler: str = "fr-fcfs"
    row_hit_cap: int = 4
    transaction_queue: int = 32
    command_queue: int = 8
    write_drain_low: int = 16
    queue_structure: str = "per-bank"
    dual_command: bool = False


class Burst:
    """One burst of a request: where it goes and whom it belongs to. Never changed once made."""

    __slots__ = ("arrival", "bank", "channel", "is_write", "line", "owner", "queue", "rank", "row")

    def __init__(
        self, arrival: int, is_write: bool, line: int, where: dict[str, int], banks: int, per_group: int, owner: object
    ) -> None:
        self.arrival = arrival
        self.is_write = is_write
        self.line = line
        self.channel = where["ch"]
        self.rank = where["ra"]
        self.bank = where["bg"] * per_group + where["ba"]
        self.queue = self.rank * banks + self.bank
        self.row = where["ro"]
        self.owner = owner


class Owner:
    """What a group of bursts reports to: a request handed over as one (``bursts`` of them)."""

    __slots__ = ("bursts", "token")

    def __init__(self, bursts: int, token: object) -> None:
        self.bursts = bursts
        self.token = token


class Served:
    """What became of one burst (the journal's entry): times in memory cycles.

    ``how`` it met its row (``HIT``, ``OPENED`` it, or a ``CONFLICT`` closed another first);
    ``taken`` is when its bank took it up, and ``held`` what it waited for until then (``BANK``:
    its bank serving others, ``REFRESH``: a refresh of its rank, ``DRAIN``: the bus serving the
    other direction, reads or writes); a refresh while it waited for its bank's commands counts too.
    """

    __slots__ = ("accepted", "burst", "complete", "held", "how", "issued", "taken")

    HIT, OPENED, CONFLICT = 0, 1, 2
    NOTHING, BANK, REFRESH, DRAIN = 0, 1, 2, 3

    def __init__(
        self,
        burst: Burst,
        accepted: int,
        issued: int,
        complete: int,
        how: int,
        taken: int | None = None,
        held: int = NOTHING,
    ) -> None:
        self.burst = burst
        self.accepted = accepted
        self.issued = issued
        self.complete = complete
        self.how = how
        self.taken = accepted if taken is None else taken
        self.held = held


class Completions:
    """Requests served in parts (bursts, or runs of them): each completes with its last part, and
    they come out in the order they complete."""

    def __init__(self) -> None:
        self._counts: dict[Owner, list] = {}
        """Per request with parts served: how many, and the one that completes last."""
        self._ready: list[tuple[int, int, Owner, Served]] = []
        self._sequence = 0

    def add(self, served: Served) -> None:
        """One part of a request is served."""
        owner = served.burst.owner
        count = self._counts.get(owner)
        if count is None:
            count = self._counts[owner] = [0, served]
        count[0] += 1
        if served.complete > count[1].complete:
            count[1] = served
        if count[0] == owner.bursts:
            del self._counts[owner]
            self._sequence += 1
            heapq.heappush(self._ready, (count[1].complete, self._sequence, owner, count[1]))

    def next(self) -> float:
        """The earliest cycle at which a request is known to complete (inf if none yet)."""
        return self._ready[0][0] if self._ready else NEVER

    def pop(self, until: int) -> list[tuple[int, Owner, Served]]:
        """The requests that complete at or before cycle ``until``: ``(cycle, owner, its last part)``."""
        out = []
        while self._ready and self._ready[0][0] <= until:
            time, _, owner, last = heapq.heappop(self._ready)
            out.append((time, owner, last))
        return out

    def save(self) -> tuple:
        return {owner: list(count) for owner, count in self._counts.items()}, list(self._ready), self._sequence

    def restore(self, saved: tuple) -> None:
        self._counts, self._ready, self._sequence = saved


class DramController:
    """Every channel of one DRAM, its in-order inbox, and the journal of what was served."""

    def __init__(self, timing: DramTiming, organisation: Organisation, settings: Settings) -> None:
        self.timing = timing
        self.organisation = organisation
        self.settings = settings
        self._decoder = organisation.decoder()
        self._shift = _log2(organisation.burst_bytes)
        self.channels = [_Channel(self, c) for c in range(organisation.channels)]
        self.inbox: list[Burst] = []
        self.head = 0
        """Index of the first burst of the inbox not yet accepted."""
        self.clk = 0
        """The first cycle not yet simulated."""
        self.journal: list[Served] = []
        """What was served, burst by burst, since the last :meth:`save` (or ever, without one)."""
        self.done = Completions()
        self.reads_waiting = 0
        """Reads accepted and not yet issued: each will complete."""
        self.activity: list[tuple] | None = None
        """When a list, what the banks and ranks did, for a trace: ``(channel, rank, bank, start,
        end, burst)`` for a column command (bank None: a refresh), in time order."""
        self._look_ahead: tuple | None = None
        """The state saved before :meth:`next_event` ran ahead, while it is ahead."""

    # -- handing over ------------------------------------------------------------------------

    def bursts(self, address: int, nbytes: int) -> range:
        """The burst (line) numbers that bytes ``[address, address + nbytes)`` touch."""
        return range(address >> self._shift, ((address + nbytes - 1) >> self._shift) + 1)

    def add(self, address: int, nbytes: int, is_write: bool, token: object, at: int) -> Owner:
        """Hand over a request at cycle ``at`` (not before :attr:`clk`); returns what its bursts report to."""
        if at < self.clk:
            raise ValueError(f"a request at cycle {at} reached a controller already at cycle {self.clk}")
        lines = self.bursts(address, nbytes)
        owner = Owner(len(lines), token)
        org = self.organisation
        banks, per_group = org.bankgroups * org.banks_per_group, org.banks_per_group
        for line in lines:
            where = {name: (line >> shift) & mask for name, shift, mask in self._decoder}
            self.inbox.append(Burst(at, is_write, line, where, banks, per_group, owner))
        return owner

    # -- outcomes ----------------------------------------------------------------------------

    def completed(self, until: int) -> list[tuple[int, Owner, Served]]:
        """Pop the requests that complete at or before cycle ``until``: ``(cycle, owner, its last burst)``."""
        return self.done.pop(until)

    def _served(self, served: Served) -> None:
        self.journal.append(served)
        self.done.add(served)

    # -- time --------------------------------------------------------------------------------

    def run(self, until: float, stop_at_completion: bool = False) -> None:
        """Simulate cycles ``clk .. until - 1``; with ``stop_at_completion``, stop instead at the
        cycle the first known completion falls due (or when nothing is left to complete)."""
        channels, inbox = self.channels, self.inbox
        while self.clk < until:
            t = self.clk
            if stop_at_completion:
                if self.done.next() <= t:
                    return
                if self.done.next() == NEVER and not self.reads_waiting and self.head == len(inbox):
                    return  # nothing more will complete until something arrives
            acted = self._accept(t)
            for channel in channels:
                acted = channel.tick(t) or acted
            if acted:
                self.clk = t + 1
                continue
            # Nothing happened at t: jump to the next cycle at which something can.
            soon = min(channel.next_time(t) for channel in channels)
            if self.head < len(inbox) and inbox[self.head].arrival > t:
                soon = min(soon, inbox[self.head].arrival)
            if stop_at_completion:
                soon = min(soon, self.done.next())
            self.clk = int(min(soon, until))

    def _accept(self, t: int) -> bool:
        """Take bursts from the inbox, in order, while their channel's queue has room."""
        inbox, accepted = self.inbox, False
        capacity = self.settings.transaction_queue
        while self.head < len(inbox):
            burst = inbox[self.head]
            if burst.arrival > t:
                break
            channel = self.channels[burst.channel]
            queue = channel.write_q if burst.is_write else channel.read_q
            if len(queue) >= capacity:
                break
            self.head += 1
            accepted = True
            channel.take(burst, t)
        return accepted

    # -- driven in step with a simulation ---------------------------------------------------

    def advance(self, until: int, stop_at_completion: bool = False) -> None:
        """Bring the model to cycle ``until`` (a request arriving then is added after), first going
        back to the last in-step state if :meth:`next_event` ran it past ``until``; with
        ``stop_at_completion``, no further than the first completion, or than the cycle from which
        nothing will complete without another arrival."""
        if self._look_ahead is not None and self.clk > until:
            self.restore(self._look_ahead)
        self._look_ahead = None
        self.run(until, stop_at_completion)

    def next_event(self) -> float:
        """Run ahead, as if nothing else will arrive, to the first completion, and return its cycle
        (inf if none will come); :meth:`advance` undoes what an arrival meanwhile makes wrong."""
        if self._look_ahead is None:
            self._look_ahead = self.save()
            self.run(NEVER, stop_at_completion=True)
        return self.done.next()

    # -- optimism ----------------------------------------------------------------------------

    def save(self) -> tuple:
        """Everything :meth:`run` may change, to :meth:`restore` later.

        What is behind the restore point goes for good: the bursts already taken from the inbox
        and the journal so far (which then holds what was served since the last save).
        """
        del self.inbox[: self.head]
        self.head = 0
        self.journal.clear()
        return (
            self.clk,
            self.done.save(),
            self.reads_waiting,
            None if self.activity is None else len(self.activity),
            [channel.save() for channel in self.channels],
        )

    def restore(self, saved: tuple) -> None:
        """Go back to a :meth:`save` (bursts added since stay in the inbox)."""
        self.clk, done, self.reads_waiting, recorded, channels = saved
        self.head = 0
        self.done.restore(done)
        self.journal.clear()
        if self.activity is not None:
            del self.activity[recorded or 0 :]
        for channel, state in zip(self.channels, channels, strict=True):
            channel.restore(state)


class ChannelBase:
    """What a channel keeps whichever model schedules it (bursts or row runs): its banks' timing,
    the controller settings it acts on, the refreshes due, and what it served."""

    def __init__(self, controller: DramController | RowController, index: int) -> None:
        self.index = index
        timing, settings = controller.timing, controller.settings
        self.timing = timing
        self.banks = timing.banks
        self.state = ChannelTiming(timing, record=False)
        self.first_ready = settings.scheduler == "fr-fcfs"
        self.cap = settings.row_hit_cap
        self.close_page = settings.row_policy == "closed"
        self.depth = settings.command_queue
        self.capacity = settings.transaction_queue
        self.drain_low = settings.write_drain_low
        self.dual = settings.dual_command
        self.draining = 0
        self.refresh_interval = max(1, timing.tREFI // timing.ranks)
        """Cycles between refreshes, each rank's staggered in turn."""
        self.refresh_next_rank = 0
        self.refresh_wait: list[int] = []
        """Ranks whose refresh has fallen due, oldest first."""
        self.served_counts = [0, 0, 0]
        """Column commands to a row already used since it opened (hits) or the first after its
        activate (misses), and precharges closing a row for another (conflicts)."""
        self.refreshes = 0
        self.refreshed = [-1] * timing.ranks
        """When each rank was last refreshed."""


class _Channel(ChannelBase):
    """One channel: its queues, its banks' timing and its share of the scheduling."""

    def __init__(self, controller: DramController, index: int) -> None:
        super().__init__(controller, index)
        self.controller = controller
        timing, settings = controller.timing, controller.settings
        self.per_bank = settings.queue_structure == "per-bank"
        queues = timing.ranks * (timing.banks if self.per_bank else 1)
        self.read_q: list[tuple[Burst, int]] = []
        self.write_q: list[tuple[Burst, int]] = []
        self.queues: list[list[tuple[Burst, int]]] = [[] for _ in range(queues)]
        every_bank = timing.ranks * timing.banks
        self.hits = [0] * every_bank
        """Column commands to each bank's open row since it opened."""
        self.opened = [-1] * every_bank
        self.closed = [-1] * every_bank
        self.turn = 0
        self.writes_pending: dict[int, int] = {}

    def save(self) -> tuple:
        s = self.state
        return (
            [list(q) for q in (self.read_q, self.write_q)],
            [list(q) for q in self.queues],
            list(self.hits),
            list(self.opened),
            list(self.closed),
            self.turn,
            self.draining,
            list(self.refresh_wait),
            self.refresh_next_rank,
            dict(self.writes_pending),
            list(self.served_counts),
            self.refreshes,
            list(self.refreshed),
            [list(x) for x in s._bank],
            [list(x) for x in s._group],
            [list(x) for x in s._rank],
            [list(x) for x in s._other],
            list(s.open_rows),
            [list(a) for a in s.activates],
            s._last_command,
        )

    def restore(self, saved: tuple) -> None:
        s = self.state
        (
            (self.read_q, self.write_q),
            self.queues,
            self.hits,
            self.opened,
            self.closed,
            self.turn,
            self.draining,
            self.refresh_wait,
            self.refresh_next_rank,
            self.writes_pending,
            self.served_counts,
            self.refreshes,
            self.refreshed,
            s._bank,
            s._group,
            s._rank,
            other,
            s.open_rows,
            activates,
            s._last_command,
        ) = saved
        for mine, then in zip(s._other, other, strict=True):  # others' gaps are shared by reference
            mine[:] = then
        for window, times in zip(s.activates, activates, strict=True):
            window.clear()
            window.extend(times)

    # -- accepting ---------------------------------------------------------------------------

    def take(self, burst: Burst, t: int) -> None:
        """A burst enters the transaction queue at cycle ``t``."""
        if burst.is_write:
            self.write_q.append((burst, t))
            self.writes_pending[burst.line] = self.writes_pending.get(burst.line, 0) + 1
            # Posted: the writer is done as soon as the controller holds the data.
            self.controller._served(Served(burst, t, t, t + 1, Served.HIT))
        elif burst.line in self.writes_pending:
            # The data is still in the write queue: served from there.
            self.controller._served(Served(burst, t, t, t + 1, Served.HIT))
        else:
            self.read_q.append((burst, t))
            self.controller.reads_waiting += 1

    # -- one cycle ---------------------------------------------------------------------------

    def tick(self, t: int) -> bool:
        """Simulate cycle ``t``; returns whether anything happened."""
        acted = False
        if (t + 1) % self.refresh_interval == 0:
            self.refresh_wait.append(self.refresh_next_rank)
            self.refresh_next_rank = (self.refresh_next_rank + 1) % self.timing.ranks
            acted = True
        issued = self._refresh_command(t) if self.refresh_wait else None
        if issued is None:
            issued = self._queue_command(t, None)
        if issued is not None:
            acted = True
            if self.dual:
                self._queue_command(t, issued)
        return self._schedule(t) or acted

    def _refresh_command(self, t: int) -> Command | None:
        rank, state = self.refresh_wait[0], self.state
        first = rank * self.banks
        for bank in range(self.banks):
            if state.open_rows[first + bank] is not None:
                if state.earliest(PRECHARGE, rank, bank) <= t:
                    state.commit(PRECHARGE, rank, bank, t)
                    self.closed[first + bank] = t
                    return PRECHARGE
                return None
        if state.earliest(REFRESH, rank, 0) <= t:
            state.commit(REFRESH, rank, 0, t)
            self.refresh_wait.pop(0)
            self.refreshes += 1
            self.refreshed[rank] = t
            activity = self.controller.activity
            if activity is not None:
                activity.append((self.index, rank, None, t, t + self.timing.tRFC, None))
            return REFRESH
        return None

    def _required(self, queue: list[tuple[Burst, int]], i: int) -> Command | None:
        """The command entry ``i`` of ``queue`` needs next, or None while the rules hold it back.

        A row is closed only for its bank's oldest request in the queue, and (``fr-fcfs``) only
        once no request waits for the open row or ``row_hit_cap`` hits have gone since it opened;
        ``fcfs`` closes it for the oldest request at once.
        """
        burst = queue[i][0]
        b = burst.queue
        open_row = self.state.open_rows[b]
        if open_row == burst.row:
            if burst.is_write and any(not e.is_write and e.line == burst.line for e, _ in queue[:i]):
                return None  # a read of the same line goes first
            return WRITE if burst.is_write else READ
        if open_row is None:
            return ACTIVATE
        if i and any(e.queue == b for e, _ in queue[:i]):
            return None
        if (
            self.first_ready
            and self.hits[b] < self.cap
            and any(e.queue == b and e.row == open_row for e, _ in queue[i + 1 :])
        ):
            return None  # fr-fcfs: the row's hits behind it go first, up to the cap
        return PRECHARGE

    def _candidate(self, q: int, t: int, column_only: bool | None) -> tuple[Command, int] | None:
        """The command queue ``q`` would issue at ``t``: ``(command, entry index)``, or None.

        ``column_only``: True to consider only column commands, False only row commands, None both.
        """
        queue, state, banks = self.queues[q], self.state, self.banks
        ready: dict[tuple[int, Command], bool] = {}
        for i in range(len(queue) if self.first_ready else 1):
            command = self._required(queue, i)
            if command is None or (column_only is not None and (command in (READ, WRITE)) != column_only):
                continue
            b = queue[i][0].queue
            ok = ready.get((b, command))
            if ok is None:
                ok = ready[(b, command)] = state.earliest(command, *divmod(b, banks)) <= t
            if ok:
                return command, i
        return None

    def _queue_command(self, t: int, first: Command | None) -> Command | None:
        """Issue the first ready command, banks visited round-robin after the last that issued.

        With ``first`` (HBM's second command bus), only a command of the other kind (column
        vs row) may go in the same cycle.
        """
        queues = self.queues
        count = len(queues)
        refreshing = self.refresh_wait[0] if self.refresh_wait else -1
        column_only = None if first is None else first not in (READ, WRITE)
        for step in range(1, count + 1):
            q = (self.turn + step) % count
            if not queues[q] or queues[q][0][0].rank == refreshing:
                continue
            found = self._candidate(q, t, column_only)
            if found is None:
                continue
            command, i = found
            if first is None:
                self.turn = q
            self._issue(q, command, i, t)
            return command
        return None

    def _issue(self, q: int, command: Command, i: int, t: int) -> None:
        state = self.state
        queue = self.queues[q]
        burst, accepted = queue[i]
        b = burst.queue
        rank, bank = divmod(b, self.banks)
        if command == ACTIVATE:
            state.commit(ACTIVATE, rank, bank, t, burst.row)
            self.opened[b] = t
            self.hits[b] = 0
            return
        if command == PRECHARGE:
            state.commit(PRECHARGE, rank, bank, t)
            self.closed[b] = t
            self.served_counts[Served.CONFLICT] += 1
            return
        state.commit(command, rank, bank, t)
        self.served_counts[Served.OPENED if self.hits[b] == 0 else Served.HIT] += 1
        self.hits[b] += 1
        del queue[i]
        activity = self.controller.activity
        if activity is not None:
            activity.append((self.index, rank, bank, t, t + self.timing.burst_cycles, burst))
        if self.closed[b] >= accepted:
            how = Served.CONFLICT
        else:
            how = Served.OPENED if self.opened[b] >= accepted else Served.HIT
        if command == WRITE:
            left = self.writes_pending[burst.line] - 1
            if left:
                self.writes_pending[burst.line] = left
            else:
                del self.writes_pending[burst.line]
        else:
            self.controller.reads_waiting -= 1
            held = Served.REFRESH if self.refreshed[rank] >= accepted else Served.NOTHING
            self.controller._served(Served(burst, accepted, t, t + self.timing.read_delay, how, held=held))
        if self.close_page and not any(e.queue == b and e.row == burst.row for e, _ in queue):
            # Close the row as soon as it may be (an auto-precharge).
            pre = state.earliest(PRECHARGE, rank, bank)
            state.commit(PRECHARGE, rank, bank, pre)
            self.closed[b] = pre

    def _schedule(self, t: int) -> bool:
        """Move one transaction to its bank's command queue."""
        reads, writes = self.read_q, self.write_q
        if not self.draining and (len(writes) >= self.capacity or (not reads and len(writes) >= self.drain_low)):
            self.draining = len(writes)
        source = writes if self.draining else reads
        for i, (burst, accepted) in enumerate(source):
            queue = self.queues[burst.queue if self.per_bank else burst.rank]
            if len(queue) >= self.depth:
                continue
            if burst.is_write:
                self.draining -= 1
            del source[i]
            queue.append((burst, accepted))
            return True
        return False

    # -- skipping idle cycles ----------------------------------------------------------------

    def next_time(self, t: int) -> float:
        """The earliest cycle after ``t`` at which this channel may do something (nothing has
        arrived meanwhile)."""
        interval = self.refresh_interval
        soon: float = ((t + 1) // interval + 1) * interval - 1  # the next refresh falling due
        state = self.state
        if self.refresh_wait:
            rank = self.refresh_wait[0]
            first = rank * self.banks
            open_banks = [b for b in range(self.banks) if state.open_rows[first + b] is not None]
            if open_banks:
                soon = min(soon, state.earliest(PRECHARGE, rank, open_banks[0]))
            else:
                soon = min(soon, state.earliest(REFRESH, rank, 0))
        refreshing = self.refresh_wait[0] if self.refresh_wait else -1
        for q, queue in enumerate(self.queues):
            if not queue or queue[0][0].rank == refreshing:
                continue
            soon = min(soon, self._ready_time(q))
        for source in (self.read_q, self.write_q):
            if any(len(self.queues[b.queue if self.per_bank else b.rank]) < self.depth for b, _ in source):
                return t + 1
        return max(soon, t + 1)

    def _ready_time(self, q: int) -> float:
        """When queue ``q``'s next command may issue, from the bank state alone."""
        queue, state, banks = self.queues[q], self.state, self.banks
        soon: float = NEVER
        seen = set()
        for i in range(len(queue) if self.first_ready else 1):
            command = self._required(queue, i)
            b = queue[i][0].queue
            if command is not None and (b, command) not in seen:
                seen.add((b, command))
                soon = min(soon, state.earliest(command, *divmod(b, banks)))
        return soon
