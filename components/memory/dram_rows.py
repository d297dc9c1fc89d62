"""A DRAM controller that schedules row runs, not bursts: the fast timing model for whole networks.

A running system hands its DRAM kilobyte requests, and on the usual address mappings most of a
request's bursts fall in one row of one bank. This controller splits each request into *runs*
(its bursts that share a channel, rank, bank and row) and schedules runs, with the rules of the
burst-by-burst model (:mod:`~desim.components.memory.dram_controller`) where they apply:

- requests are taken in order into a channel's read or write queue while it holds fewer than
  ``transaction_queue`` bursts (a full queue holds everything behind it); writes are posted;
- a free bank takes the run its command queue would serve next: the oldest to its open row while
  fewer than ``row_hit_cap`` bursts have hit since the row opened (``fr-fcfs``), else its oldest;
  reads go first, writes when the write queue is full or reads have run out with
  ``write_drain_low`` writes waiting, then as many as were waiting;
- precharge and activate are committed in time order (one row command a cycle, two command buses
  on HBM), each as soon as every timing rule allows (:class:`ChannelTiming`), and ``row_policy:
  closed`` precharges a bank once its run ends and nothing waits for the row;
- a run then *streams* its column commands. Streaming runs share the data bus as a round-robin
  scheduler shares it, worked out as rates rather than command by command: each run at most one
  burst per ``max(burst, tCCD_L)`` (its bank's pace), each bank group as much, the bus one burst
  per ``max(burst, tCCD_S)`` plus ``tRTRS`` for each switch of rank, shared max-min fairly. A
  run's first column command issues when it starts, its last when the rest have streamed; that
  one is committed, so its bank's next command and any read/write turnaround wait for it;
- every rank is refreshed each ``tREFI`` (staggered): its banks finish, precharge, and wait ``tRFC``.

A one-burst run is a single column command committed when it issues, so a stream of 64-byte
requests is scheduled command by command; a long run costs a few events instead of one decision
per burst, and trades the exact interleave of its column commands for their shared rate
(tests bound the difference from the burst model on kilobyte streams). Times are memory cycles.
"""

from __future__ import annotations

import math

from desim.components.memory.dram_controller import (
    NEVER,
    ChannelBase,
    Completions,
    Organisation,
    Owner,
    Served,
    Settings,
    _log2,
)
from desim.components.memory.dram_timing import Command, DramTiming

READ, WRITE, ACTIVATE, PRECHARGE, REFRESH = (
    Command.READ, Command.WRITE, Command.ACTIVATE, Command.PRECHARGE, Command.REFRESH
)  # fmt: skip


class Run:
    """Bursts of one request to one row of one bank, in one channel."""

    __slots__ = ("arrival", "bank", "channel", "group", "is_write", "n", "owner", "rank", "row")

    def __init__(self, arrival: int, is_write: bool, n: int, where: tuple[int, ...], owner: Owner) -> None:
        self.arrival = arrival
        self.is_write = is_write
        self.n = n
        self.channel, self.rank, self.bank, self.group, self.row = where
        self.owner = owner


class RowController:
    """Every channel of one DRAM, scheduling runs; the same interface as the burst model's port side:
    :meth:`advance`, :meth:`add`, :meth:`next_event`, :meth:`completed`."""

    def __init__(self, timing: DramTiming, organisation: Organisation, settings: Settings) -> None:
        self.timing = timing
        self.organisation = organisation
        self.settings = settings
        self._decoder = organisation.decoder()
        self._shift = _log2(organisation.burst_bytes)
        self._co_lowest = organisation.fields()[-1] == "co"
        self._co_lines = 1 << organisation.widths()["co"]
        self._read_delay = timing.read_delay
        self.channels = [_Channel(self, c) for c in range(organisation.channels)]
        self.inbox: list[Run] = []
        self.head = 0
        self.clk = 0
        """The cycle the model has reached: everything before it has happened."""
        self.done = Completions()
        self._soon: float | None = None
        """Once :attr:`clk` is settled, the next cycle something is due on a busy channel (None:
        not settled, or something arrived since)."""
        self._step: float = 0
        """Once :attr:`clk` is settled, the next cycle something is due on any channel."""
        self._arrival: float = NEVER
        """Once :attr:`clk` is settled, when the inbox's first run may next be taken in..."""
        self._blocked: Run | None = None
        """... that run: until then, only a bank taking a run (which a settle sees) makes room for it."""
        self._writes_waiting = 0
        """Runs of writes in the inbox, not yet taken in."""
        self.activity: list[tuple] | None = None
        """When a list, what the banks and ranks did, for a trace: ``(channel, rank, bank, start,
        end, run)`` for a run served (bank None: a refresh), in the order they end."""

    # -- handing over ------------------------------------------------------------------------

    def _where(self, line: int) -> tuple[int, int, int, int, int]:
        fields = {name: (line >> shift) & mask for name, shift, mask in self._decoder}
        timing = self.timing
        bank = fields["ra"] * timing.banks + fields["bg"] * timing.banks_per_group + fields["ba"]
        return fields["ch"], fields["ra"], bank, fields["ra"] * timing.bankgroups + fields["bg"], fields["ro"]

    def add(self, address: int, nbytes: int, is_write: bool, token: object, at: int) -> Owner:
        """Hand over a request at cycle ``at`` (not before :attr:`clk`); returns what its runs report to."""
        if at < self.clk:
            raise ValueError(f"a request at cycle {at} reached a controller already at cycle {self.clk}")
        first, last = address >> self._shift, (address + nbytes - 1) >> self._shift
        runs: dict[tuple, int] = {}
        if self._co_lowest:  # consecutive lines share a row until the column field wraps
            line, span = first, self._co_lines
            while line <= last:
                end = min(last, (line // span + 1) * span - 1)
                where = self._where(line)
                runs[where] = runs.get(where, 0) + end - line + 1
                line = end + 1
        else:
            for line in range(first, last + 1):
                where = self._where(line)
                runs[where] = runs.get(where, 0) + 1
        owner = Owner(len(runs), token)
        if not (self.head < len(self.inbox) and self.inbox[self.head] is self._blocked):
            self._soon = None  # settle again with the new runs, unless they queue behind one that must wait
        self._writes_waiting += is_write * len(runs)
        self.inbox.extend(Run(at, is_write, n, where, owner) for where, n in runs.items())
        return owner

    # -- outcomes ----------------------------------------------------------------------------

    def completed(self, until: int) -> list[tuple[int, Owner, Served]]:
        """Pop the requests that complete at or before cycle ``until``: ``(cycle, owner, its last run)``."""
        return self.done.pop(until)

    # -- time --------------------------------------------------------------------------------

    def next_event(self) -> float:
        """Settle what is due now (what was just added), then say the next cycle at which a request
        completes or the model must be advanced to see what happens (inf: nothing will)."""
        if self._soon is None:
            self.advance(self.clk)
        # Nobody need look before a request can complete: what happens inside until then is
        # caught up when the model is next advanced.
        soon = self.done.next()
        delay, t = self._read_delay, self.clk
        head = self.inbox[self.head] if self.head < len(self.inbox) else None
        for channel in self.channels:
            free, read = channel.bounds(t, self._soon)
            soon = min(soon, read)
            if channel.queues[0]:  # a queued read waits at least for a bank to take it
                soon = min(soon, free + delay)
            if head is not None and head.channel == channel.index:
                # The inbox moves when its first run is taken in: once it has arrived, when
                # streaming makes room or a bank takes a run.
                taken = min(self._arrival, max(head.arrival, free))
                soon = min(soon, taken + (1 if self._writes_waiting else delay))
        return soon

    def _arrival_time(self, t: int) -> float:
        """When the inbox's first run may next be taken in (after ``t``)."""
        if self.head == len(self.inbox):
            return NEVER
        run = self.inbox[self.head]
        if run.arrival > t:
            return run.arrival
        return self.channels[run.channel].room_from(int(run.is_write), t + 1)

    def advance(self, until: int, stop_at_completion: bool = False) -> None:
        """Do everything due at cycles up to and including ``until``; with ``stop_at_completion``,
        no further than the first cycle at which a request completes, or (``until`` infinite) than
        the cycle from which nothing happens without another arrival."""
        if self.head > 4096:
            del self.inbox[: self.head]
            self.head = 0
        channels, inbox = self.channels, self.inbox
        while True:
            t = self.clk
            if self._soon is None:  # settle cycle t: do all that can happen then
                head = inbox[self.head] if self.head < len(inbox) else None
                if head is not None and (head is not self._blocked or t >= self._arrival):
                    self._accept(t)
                while True:  # until nothing more happens at t, however often it is visited
                    acted = False
                    for channel in channels:
                        acted = channel.act(t) or acted
                    if not (acted and self._accept(t)):  # a bank taking a run may have made room
                        break
                step = wake = self._arrival = self._arrival_time(t)
                self._blocked = inbox[self.head] if self.head < len(inbox) else None
                for channel in channels:
                    time = channel.next_time(t)
                    if time < step:
                        step = time
                    # An idle channel's refreshes are caught up when something arrives.
                    if time < wake and (channel.streams or channel.opening or channel.queued[0] or channel.draining):
                        wake = time
                self._step, self._soon = step, wake
            if stop_at_completion:
                until = min(until, self.done.next())
            if until <= t:
                return
            if self._step > until:  # nothing happens before then
                self.clk = until
                return
            if self._soon == NEVER and until == NEVER:
                return  # nothing will, but what waits for an arrival
            self.clk = int(self._step)
            self._soon = None

    def _accept(self, t: int) -> bool:
        """Take runs from the inbox, in order, while their channel's queue has room; whether any were."""
        inbox, head = self.inbox, self.head
        while self.head < len(inbox):
            run = inbox[self.head]
            if run.arrival > t or not self.channels[run.channel].take(run, t):
                break
            self.head += 1
            self._writes_waiting -= run.is_write
        return self.head > head


class _Channel(ChannelBase):
    """One channel: its queues, its banks and the runs streaming on its data bus."""

    def __init__(self, controller: RowController, index: int) -> None:
        super().__init__(controller, index)
        self.controller = controller
        timing = controller.timing
        self.queues: tuple[list[tuple[Run, int]], list[tuple[Run, int]]] = ([], [])
        """Runs accepted and not yet started, reads and writes, each with its acceptance cycle."""
        self.queued = [0, 0]
        """Bursts in each queue."""
        every_bank = timing.ranks * timing.banks
        self.work: list[list | None] = [None] * every_bank
        """Per bank, the run it serves: ``[run, accepted, next command, its earliest cycle, how,
        taken, held]`` (see :class:`Served`)."""
        self.freed = [-1] * every_bank
        """When each bank last finished a run."""
        self.opening: dict[int, list] = {}
        """The banks whose run waits for its row (precharge, activate) or its first column command."""
        self.fixed = [0, 0]
        """Bursts of each kind held in the transaction queue whatever the streams do: those queued,
        and those of a run waiting for its row beyond what its bank's command queue takes."""
        self.hits = [0] * every_bank
        self.streams: list[list] = []
        """Runs on the data bus: ``[run, accepted, how, first column, bursts left, rate, since when,
        the cycle of its last column command at that rate, its bank's work entry]``."""
        self.ending: float = NEVER
        """The soonest cycle at which a streaming run ends."""
        self._reshare = False
        """Whether runs started or ended at the cycle being settled: the bus is shared anew once
        all that happens then has (a run's progress up to then is that of its old rate)."""
        self.row_free = 0
        """The first cycle with the row command bus free."""
        self.refresh_due = self.refresh_interval - 1
        burst = timing.burst_cycles
        self.pace = max(burst, timing.tCCD_L)
        """Cycles between a bank's (and a bank group's) column commands."""
        self.slot = max(burst, timing.tCCD_S)
        """Cycles a burst holds the data bus between column commands of different groups."""

    # -- accepting ---------------------------------------------------------------------------

    def room_from(self, kind: int, t: int) -> float:
        """The first cycle from ``t`` on at which the ``kind`` (0 reads, 1 writes) transaction
        queue has room, if streaming alone makes it (inf: only a bank taking a run will).

        The queue holds the bursts of runs queued or waiting for their row (``fixed``), and of
        each streaming run what its bank's command queue (``command_queue`` bursts) cannot take;
        that excess leaves as the run streams. Worked out in absolute cycles, the answer does
        not depend on when it is asked, and taking a run in asks the same question.
        """
        room = self.capacity - self.fixed[kind]
        if room <= 0:
            return NEVER
        # Each stream's excess, extrapolated back to cycle 0, and the cycle it runs out (those
        # gone by ``t`` too: they leave the sums below as they would have then).
        depth, excess = self.depth, []
        for stream in self.streams:
            if stream[0].is_write == kind and stream[4] > depth:
                at_zero = stream[4] + stream[5] * stream[6] - depth
                excess.append((at_zero / stream[5], at_zero, stream[5]))
        if not excess:
            return t
        if len(excess) == 1:  # the sums below, for one
            ((gone, total, rate),) = excess
            when = (total - room) / rate
            return max(t, math.floor(when) + 1) if when < gone else t
        excess.sort()
        total, rate = sum(e for _, e, _ in excess), sum(r for _, _, r in excess)
        for gone, each, each_rate in excess:
            when = (total - room) / rate  # held < capacity after this cycle
            if when < gone:
                return max(t, math.floor(when) + 1)
            total, rate = total - each, rate - each_rate
        return t

    def take(self, run: Run, t: int) -> bool:
        """Take ``run`` into its transaction queue at ``t`` if the queue has room then."""
        kind = int(run.is_write)
        if self.room_from(kind, t) > t:
            return False
        self.queues[kind].append((run, t))
        self.queued[kind] += run.n
        self.fixed[kind] += run.n
        if run.is_write:  # posted: the writer is done once the controller holds the data
            self.controller.done.add(Served(run, t, t, t + 1, Served.HIT))
        return True

    # -- deciding ----------------------------------------------------------------------------

    def act(self, t: int) -> bool:
        """Everything that can happen at cycle ``t``; whether the transaction queues made room
        (beyond what streaming makes)."""
        if t >= self.refresh_due:
            self.refresh_wait.append(self.refresh_next_rank)
            self.refresh_next_rank = (self.refresh_next_rank + 1) % self.timing.ranks
            self.refresh_due += self.refresh_interval
        fixed = self.fixed[0] + self.fixed[1]
        if self.ending <= t:
            self._finish(t)
        while True:  # until nothing more happens at t: a run taken may start a drain, a run of one
            if self.refresh_wait:  # burst ends as it starts and its bank may take the next
                self._refresh(t)
            writes = self.queued[1]  # a write drain starts
            if not self.draining and (writes >= self.capacity or (not self.queued[0] and writes >= self.drain_low)):
                self.draining = writes
            started = bool(self.queues[1 if self.draining else 0]) and self._start(t)
            if not ((self.opening and self._commands(t)) or started):
                if self._reshare:
                    self._rates(t)
                return self.fixed[0] + self.fixed[1] != fixed

    def _finish(self, t: int) -> None:
        """Runs whose last column command falls at (or before) ``t`` end; their banks are free."""
        ended = [stream for stream in self.streams if stream[7] <= t]
        self.streams = [stream for stream in self.streams if stream[7] > t]
        for stream in ended:
            self._column_end(stream[8], stream[3], t)
        self._reshare = True

    def _column_end(self, current: list, first: int, t: int) -> None:
        """The run a bank serves (its work entry) issues its last column command at ``t``."""
        run, accepted, _, _, how, taken, held = current
        b, state = run.bank, self.state
        command = WRITE if run.is_write else READ
        state.commit(command, run.rank, b - run.rank * self.banks, t)
        self.work[b] = None
        self.freed[b] = t
        if not run.is_write:
            self.controller.done.add(Served(run, accepted, first, t + self.controller._read_delay, how, taken, held))
        activity = self.controller.activity
        if activity is not None:
            end = t + self.timing.burst_cycles
            activity.append((run.channel, run.rank, b - run.rank * self.banks, taken, end, run))
        if self.close_page and not any(r.bank == b and r.row == run.row for q in self.queues for r, _ in q):
            rank, bank = divmod(b, self.banks)
            pre = state.earliest(PRECHARGE, rank, bank)
            state.commit(PRECHARGE, rank, bank, pre)

    def _start(self, t: int) -> bool:
        """Free banks take the run they serve next; whether any did."""
        kind = 1 if self.draining else 0
        queue = self.queues[kind]
        if self.draining and any(not stream[0].is_write for stream in self.streams):
            return False  # the reads on the bus finish first
        if not self.draining and any(stream[0].is_write for stream in self.streams):
            return False
        open_rows, work, hits = self.state.open_rows, self.work, self.hits
        refreshing = set(self.refresh_wait)
        taken = set()
        for i, (run, _) in enumerate(queue):
            b = run.bank
            if work[b] is not None or b in taken or run.rank in refreshing:
                continue
            taken.add(b)
            pick = i
            if self.first_ready and open_rows[b] is not None and open_rows[b] != run.row and hits[b] < self.cap:
                for j in range(i + 1, len(queue)):
                    if queue[j][0].bank == b and queue[j][0].row == open_rows[b]:
                        pick = j
                        break
            chosen, accepted = queue[pick]
            if accepted == t:
                held = Served.NOTHING
            elif self.freed[b] == t:
                held = Served.BANK
            elif self.refreshed[chosen.rank] == t:
                held = Served.REFRESH
            else:
                held = Served.DRAIN
            work[b] = self.opening[b] = [chosen, accepted, None, 0, Served.HIT, t, held]
        if not taken:
            return False
        kept = []
        for entry in queue:
            run = entry[0]
            current = work[run.bank]
            if current is not None and current[0] is run and run.bank in taken:
                self.queued[kind] -= run.n
                self.fixed[kind] -= min(run.n, self.depth)
                if run.is_write:
                    self.draining = max(0, self.draining - run.n)
                continue
            kept.append(entry)
        queue[:] = kept
        return True

    def _commands(self, t: int) -> bool:
        """Issue the row and first column commands that may go at ``t``; whether a bank became free."""
        freed = False
        state, banks = self.state, self.banks
        for b, current in list(self.opening.items()):
            if current[3] > t:  # its bank's state changes only by its own commands, and gaps only grow
                continue
            run = current[0]
            rank, bank = divmod(b, banks)
            open_row = state.open_rows[b]
            if open_row == run.row:
                command = WRITE if run.is_write else READ
            elif open_row is None:
                command = ACTIVATE
            else:
                command = PRECHARGE
                current[4] = Served.CONFLICT
            if command in (READ, WRITE):
                earliest = state.earliest(command, rank, bank)
                current[2], current[3] = command, earliest
                if earliest > t:
                    continue
                freed = self._stream(b, current, t) or freed
                continue
            earliest = max(state.earliest(command, rank, bank), self.row_free)
            current[2], current[3] = command, earliest
            if earliest > t:
                continue
            self.row_free = t + 1
            if command == ACTIVATE:
                state.commit(ACTIVATE, rank, bank, t, run.row)
                self.hits[b] = 0
                if current[4] == Served.HIT:
                    current[4] = Served.OPENED
                current[2], current[3] = READ, state.earliest(WRITE if run.is_write else READ, rank, bank)
            else:
                state.commit(PRECHARGE, rank, bank, t)
                self.served_counts[Served.CONFLICT] += 1
                current[2], current[3] = ACTIVATE, state.earliest(ACTIVATE, rank, bank)
        return freed

    def _stream(self, b: int, current: list, t: int) -> bool:
        """The run starts streaming at ``t``; whether it ended there (one burst)."""
        run = current[0]
        counts = self.served_counts
        counts[Served.OPENED if self.hits[b] == 0 else Served.HIT] += 1
        counts[Served.HIT] += run.n - 1
        self.hits[b] += run.n
        del self.opening[b]
        self.fixed[int(run.is_write)] -= max(0, run.n - self.depth)
        if run.n == 1:  # one column command: it is the last
            self._column_end(current, t, t)
            return True
        # The first column command goes now; the other n - 1 stream.
        command = WRITE if run.is_write else READ
        self.state.commit(command, run.rank, b - run.rank * self.banks, t)
        self.streams.append([run, current[1], current[4], t, run.n - 1, 0.0, t, NEVER, current])
        self._reshare = True
        return False

    def _refresh(self, t: int) -> None:
        """The waiting refresh: once its rank's banks are free, precharge each open one, then refresh."""
        if self._refresh_time() > t:
            return
        rank, state = self.refresh_wait[0], self.state
        first = rank * self.banks
        self.row_free = t + 1
        for bank in range(self.banks):
            if state.open_rows[first + bank] is not None:
                state.commit(PRECHARGE, rank, bank, t)
                return
        state.commit(REFRESH, rank, 0, t)
        self.refresh_wait.pop(0)
        self.refreshes += 1
        self.refreshed[rank] = t
        activity = self.controller.activity
        if activity is not None:
            activity.append((self.index, rank, None, t, t + self.timing.tRFC, None))

    # -- streaming ---------------------------------------------------------------------------

    def _rates(self, t: int) -> None:
        """Share the data bus among the streaming runs from cycle ``t`` on, max-min fairly within
        the bank groups' pace."""
        self._reshare = False
        streams = self.streams
        count = len(streams)
        if count < 2:
            if count:  # alone on the bus: as fast as the bus and its bank group allow
                stream = streams[0]
                stream[4], stream[6] = _left(stream, t), t
                share, most = 1 / self.slot, 1 / self.pace
                stream[5] = rate = most if share > most else share
                stream[7] = math.ceil(t + stream[4] / rate - 1e-9)
            self.ending = streams[0][7] if count else NEVER
            return
        for stream in streams:
            stream[4], stream[6] = _left(stream, t), t
        groups: dict[int, list] = {}
        ranks: dict[int, int] = {}
        for stream in streams:
            run = stream[0]
            groups.setdefault(run.group, []).append(stream)
            ranks[run.rank] = ranks.get(run.rank, 0) + 1
        slot = self.slot
        if len(ranks) > 1:  # the chance that the next burst is another rank's, each switch costing tRTRS
            switch = (1 - sum((n / count) ** 2 for n in ranks.values())) * count / (count - 1)
            slot += self.timing.tRTRS * switch
        capacity, left, most = 1 / slot, count, 1 / self.pace  # bursts a cycle: the bus's, a group's
        for members in sorted(groups.values(), key=len, reverse=True):
            share = capacity / left
            rate = most / len(members) if share * len(members) > most else share
            for stream in members:
                stream[5] = rate
                stream[7] = math.ceil(stream[6] + stream[4] / rate - 1e-9)
            capacity -= rate * len(members)
            left -= len(members)
        self.ending = min(stream[7] for stream in streams)

    # -- when --------------------------------------------------------------------------------

    def next_time(self, t: int) -> float:
        """The first cycle after ``t`` at which something may happen here (nothing arriving)."""
        soon: float = min(self.refresh_due, self.ending)
        if self.opening:
            soon = min(soon, min(current[3] for current in self.opening.values()))
        if self.refresh_wait:
            soon = min(soon, self._refresh_time())
        return soon if soon > t else t + 1

    def _refresh_time(self) -> float:
        """When the waiting refresh takes its next step (once its rank's banks are free)."""
        rank, state, banks = self.refresh_wait[0], self.state, self.banks
        first = rank * banks
        if self.work[first : first + banks].count(None) < banks:
            return NEVER
        for bank, row in enumerate(state.open_rows[first : first + banks]):
            if row is not None:
                return max(state.earliest(PRECHARGE, rank, bank), self.row_free)
        return max(state.earliest(REFRESH, rank, 0), self.row_free)

    def bounds(self, t: int, soon: float) -> tuple[float, float]:
        """Lower bounds, at the fastest anything could go from ``t`` (``soon``: the next cycle
        anything happens at all): when a bank could next take a queued run, and when a read
        under way could complete.

        A run streams no faster than it does now until another ends, then no faster than its
        bank's pace; a run waiting for its row issues no column command before its next
        command's earliest cycle; a queued run whose bank is free waits for the next change (a
        drain, a refresh).
        """
        delay, pace = self.controller._read_delay, self.pace
        free: float = NEVER
        read: float = NEVER
        # Rates change only as runs start (which slows the others: max-min fairness is monotone)
        # or end: until the first ends, each goes at most at its present rate, then at its pace.
        first = self.ending
        for stream in self.streams:
            end = stream[7]
            if end > first:
                end = max(first, math.floor(first + _left(stream, first) * pace - 1e-6))
            free = min(free, end)
            if not stream[0].is_write:
                read = min(read, end + delay)
        for current in self.opening.values():
            free = min(free, current[3])
            if not current[0].is_write:
                read = min(read, current[3] + delay)
        if any(self.work[run.bank] is None for queue in self.queues for run, _ in queue):
            free = min(free, soon)
        return max(free, t), read


def _left(stream: list, t: float) -> float:
    """Bursts a streaming run has left at cycle ``t`` (its rate unchanged since it was last set)."""
    return stream[4] - stream[5] * (t - stream[6])
