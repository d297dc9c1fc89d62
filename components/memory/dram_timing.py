"""JEDEC-style DRAM command timing, worked out arithmetically from bank state.

Times are in memory clock cycles (``tCK``). A :class:`DramTiming` holds a device's parameters,
named as datasheets and DRAMsim3's configs name them, and derives from them the least gap
between any two commands (``gaps``): on the same bank, on any bank of the same bank group, on
any bank of the same rank, and on another rank. These are the DDR4 relations:

===================== ===================================================================
read -> read          ``max(burst, tCCD_L)`` same bank group, ``max(burst, tCCD_S)`` other
                      group, ``burst + tRTRS`` other rank
read -> write         ``RL + burst - WL + tRPRE + tRTRS``; other rank ``RL - WL + burst + tRTRS``
read -> precharge     ``tRTP``
write -> read         ``WL + burst + tWTR_L`` (same group), ``+ tWTR_S`` (other group);
                      other rank ``WL - RL + burst + tRTRS``
write -> write        ``max(burst, tCCD_L / tCCD_S)``; other rank ``burst + tWPRE``
write -> precharge    ``WL + burst + tWR``
activate -> read      ``tRCD`` (``tRCDRD``), -> write ``tRCD`` (``tRCDWR``), -> precharge ``tRAS``,
                      -> activate ``tRAS + tRP`` same bank, ``tRRD_L`` same group, ``tRRD_S`` other
precharge -> activate ``tRP``
refresh -> activate   ``tRFC`` (the whole rank; every bank precharged first)
===================== ===================================================================

and at most four activates per rank in any ``tFAW``. A gap of a wider scope binds the narrower
ones too (a read's ``tCCD_S`` holds for the next read in its own group as well), which is exact
because JEDEC's gaps never shrink towards the bank (``tCCD_L >= tCCD_S`` and so on; checked).

A :class:`ChannelTiming` keeps one channel's state: per bank the open row and the earliest cycle
each command may issue, per bank group, rank and "other ranks" the same for gaps of that scope,
and each rank's last four activates. :meth:`ChannelTiming.earliest` says when a command may
issue; :meth:`ChannelTiming.commit` issues it (the controller calls these, one call per command,
never an event per command); :meth:`ChannelTiming.issue` and :meth:`ChannelTiming.access` are the
same for a caller that wants "as soon as allowed", one command a cycle on the command bus.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum


class Command(IntEnum):
    ACTIVATE = 0
    READ = 1
    WRITE = 2
    PRECHARGE = 3
    REFRESH = 4


SCOPES = ("bank", "bankgroup", "rank", "other_rank")


@dataclass(frozen=True)
class DramTiming:
    """A DRAM device's timing (memory clock cycles) and organisation (one channel's worth)."""

    tCK_ns: float
    CL: int
    CWL: int
    tRCD: int
    tRP: int
    tRAS: int
    tCCD_S: int
    tCCD_L: int
    tRRD_S: int
    tRRD_L: int
    tFAW: int
    tWTR_S: int
    tWTR_L: int
    tWR: int
    tRTP: int
    tRFC: int
    tREFI: int
    burst_length: int = 8
    tRTRS: int = 1
    tRPRE: int = 1
    tWPRE: int = 1
    tRCDRD: int | None = None
    tRCDWR: int | None = None
    ranks: int = 1
    bankgroups: int = 4
    banks_per_group: int = 4
    gaps: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, longer, shorter in (
            ("tCCD_L", self.tCCD_L, self.tCCD_S),
            ("tRRD_L", self.tRRD_L, self.tRRD_S),
            ("tWTR_L", self.tWTR_L, self.tWTR_S),
        ):
            if longer < shorter:
                raise ValueError(f"{name} ({longer}) is shorter than {name[:-1]}S ({shorter})")
        if self.tREFI <= self.tRFC:
            raise ValueError(
                f"tREFI ({self.tREFI}) must be longer than tRFC ({self.tRFC}): a rank would never leave refresh"
            )
        object.__setattr__(self, "gaps", self._gaps())

    @property
    def banks(self) -> int:
        return self.bankgroups * self.banks_per_group

    @property
    def burst_cycles(self) -> int:
        """Cycles a burst holds the data bus: two beats a cycle."""
        return max(1, self.burst_length // 2)

    @property
    def read_delay(self) -> int:
        """Cycles from a read command to the last beat of its data."""
        return self.CL + self.burst_cycles

    def _gaps(self) -> dict[tuple[Command, str], dict[Command, int]]:
        """``gaps[(first, scope)][second]``: the least cycles from ``first`` to ``second`` in ``scope``."""
        rl, wl, burst = self.CL, self.CWL, self.burst_cycles
        rd_rd_l, rd_rd_s = max(burst, self.tCCD_L), max(burst, self.tCCD_S)
        rd_wr = rl + burst - wl + self.tRPRE + self.tRTRS
        wr_rd_l, wr_rd_s = wl + burst + self.tWTR_L, wl + burst + self.tWTR_S
        act_rd = self.tRCDRD if self.tRCDRD is not None else self.tRCD
        act_wr = self.tRCDWR if self.tRCDWR is not None else self.tRCD
        read, write, act, pre, ref = Command.READ, Command.WRITE, Command.ACTIVATE, Command.PRECHARGE, Command.REFRESH
        return {
            (read, "bank"): {read: rd_rd_l, write: rd_wr, pre: self.tRTP},
            (read, "bankgroup"): {read: rd_rd_l, write: rd_wr},
            (read, "rank"): {read: rd_rd_s, write: rd_wr},
            (read, "other_rank"): {read: burst + self.tRTRS, write: rl - wl + burst + self.tRTRS},
            (write, "bank"): {read: wr_rd_l, write: max(burst, self.tCCD_L), pre: wl + burst + self.tWR},
            (write, "bankgroup"): {read: wr_rd_l, write: max(burst, self.tCCD_L)},
            (write, "rank"): {read: wr_rd_s, write: max(burst, self.tCCD_S)},
            (write, "other_rank"): {read: wl - rl + burst + self.tRTRS, write: burst + self.tWPRE},
            (act, "bank"): {act: self.tRAS + self.tRP, read: act_rd, write: act_wr, pre: self.tRAS},
            (act, "bankgroup"): {act: self.tRRD_L},
            (act, "rank"): {act: self.tRRD_S},
            (pre, "bank"): {act: self.tRP, ref: self.tRP},
            (ref, "rank"): {act: self.tRFC, ref: self.tRFC},
        }

    def scoped(self, command: Command) -> tuple[tuple[tuple[int, int], ...], ...]:
        """``command``'s gaps as ``((second, gap), ...)`` per scope, in the order of :data:`SCOPES`."""
        return tuple(tuple(self.gaps.get((command, scope), {}).items()) for scope in SCOPES)


class ChannelTiming:
    """One channel's banks: when each command may issue, and what issuing one changes.

    Banks are numbered within their rank, bank group major (banks 0-3 are group 0 when there are
    four a group).
    """

    def __init__(self, timing: DramTiming, record: bool = True) -> None:
        self.timing = timing
        ranks, banks, groups = timing.ranks, timing.banks, timing.bankgroups
        width = len(Command)
        self._bank = [[0] * width for _ in range(ranks * banks)]
        self._group = [[0] * width for _ in range(ranks * groups)]
        self._rank = [[0] * width for _ in range(ranks)]
        self._other = [[0] * width for _ in range(ranks)]
        self.open_rows: list[int | None] = [None] * (ranks * banks)
        """Each bank's open row (index ``rank * banks + bank``), None when precharged."""
        self.activates = [deque(maxlen=4) for _ in range(ranks)]
        self._scoped = [timing.scoped(command) for command in Command]
        self._banks, self._groups, self._per_group = banks, groups, timing.banks_per_group
        self._others = [[self._other[r] for r in range(ranks) if r != rank] for rank in range(ranks)]
        self._last_command = -1
        self.log: list[tuple[int, Command, int, int]] | None = [] if record else None
        """Every command issued: (cycle, command, rank, bank); None when not recorded."""

    def open_row(self, rank: int, bank: int) -> int | None:
        return self.open_rows[rank * self.timing.banks + bank]

    def earliest(self, command: Command, rank: int, bank: int) -> int:
        """The first cycle at which ``command`` may issue to ``bank`` of ``rank``."""
        time = max(
            self._bank[rank * self._banks + bank][command],
            self._group[rank * self._groups + bank // self._per_group][command],
            self._rank[rank][command],
            self._other[rank][command],
        )
        if command == Command.ACTIVATE and len(self.activates[rank]) == 4:
            time = max(time, self.activates[rank][0] + self.timing.tFAW)
        elif command == Command.REFRESH:
            first = rank * self._banks
            time = max(time, *(state[Command.REFRESH] for state in self._bank[first : first + self._banks]))
        return time

    def commit(self, command: Command, rank: int, bank: int, time: int, row: int | None = None) -> None:
        """Issue ``command`` at ``time`` (at or after :meth:`earliest`) and push every later gap."""
        same_bank, same_group, same_rank, other_ranks = self._scoped[command]
        index = rank * self._banks + bank
        for state, gaps in (
            (self._bank[index], same_bank),
            (self._group[rank * self._groups + bank // self._per_group], same_group),
            (self._rank[rank], same_rank),
        ):
            for second, gap in gaps:
                if time + gap > state[second]:
                    state[second] = time + gap
        if other_ranks:
            for state in self._others[rank]:
                for second, gap in other_ranks:
                    if time + gap > state[second]:
                        state[second] = time + gap
        if command == Command.ACTIVATE:
            self.open_rows[index] = row
            self.activates[rank].append(time)
        elif command == Command.PRECHARGE:
            self.open_rows[index] = None
        self._last_command = max(self._last_command, time)
        if self.log is not None:
            self.log.append((time, command, rank, bank))

    def issue(self, command: Command, rank: int, bank: int, at: int, row: int | None = None) -> int:
        """Issue ``command`` at the first cycle from ``at`` on that every constraint and the
        command bus (one command a cycle, in time order) allow; returns that cycle."""
        time = max(at, self.earliest(command, rank, bank), self._last_command + 1)
        self.commit(command, rank, bank, time, row)
        return time

    def access(self, rank: int, bank: int, row: int, is_write: bool, at: int) -> tuple[int, int]:
        """Open ``row`` of ``bank`` if need be and read or write a burst, from cycle ``at`` on.

        Returns the cycles at which the burst's data starts and ends on the data bus.
        """
        time = at
        current = self.open_row(rank, bank)
        if current is not None and current != row:
            time = self.issue(Command.PRECHARGE, rank, bank, time)
        if current != row:
            time = self.issue(Command.ACTIVATE, rank, bank, time, row)
        time = self.issue(Command.WRITE if is_write else Command.READ, rank, bank, time)
        start = time + (self.timing.CWL if is_write else self.timing.CL)
        return start, start + self.timing.burst_cycles

    def refresh(self, rank: int, at: int) -> int:
        """Precharge every open bank of ``rank`` and refresh it; returns the refresh's cycle."""
        for bank in range(self.timing.banks):
            if self.open_row(rank, bank) is not None:
                self.issue(Command.PRECHARGE, rank, bank, at)
        return self.issue(Command.REFRESH, rank, 0, at)
