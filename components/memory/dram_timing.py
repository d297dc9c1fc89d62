"""JEDEC-style DRAM command timing, worked out arithmetically from bank state (issue 12, the core).

Times are in memory clock cycles (``tCK``). A :class:`DramTiming` holds a device's parameters,
named as datasheets and DRAMsim3's configs name them, and derives from them the least gap
between any two commands (``gaps``): on the same bank, on another bank of the same bank group,
in another bank group of the same rank, and on another rank. These are the DDR4 relations:

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

and at most four activates per rank in any ``tFAW``. A :class:`ChannelTiming` keeps, per bank,
the open row and the earliest time each command may issue, and issues one command per cycle on
the channel's command bus. :meth:`ChannelTiming.access` opens the row an access needs (closing
another first) and issues its column command, each command at the earliest time every
constraint allows: one call per access, never an event per command.

Not yet used by the ``dram`` component: the controller that queues transactions, orders them
(FR-FCFS with a cap, reads before posted writes), refreshes on time and maps addresses to
channels, ranks, banks and rows will drive it (issue 12); until then its command-bus record
keeps every cycle it has used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class Command(IntEnum):
    ACTIVATE = 0
    READ = 1
    WRITE = 2
    PRECHARGE = 3
    REFRESH = 4


@dataclass(frozen=True)
class DramTiming:
    """A DRAM device's timing and organisation, in memory clock cycles."""

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
    burst_cycles: int
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
        object.__setattr__(self, "gaps", self._gaps())

    @property
    def banks(self) -> int:
        return self.bankgroups * self.banks_per_group

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
            (ref, "bank"): {act: self.tRFC, ref: self.tRFC},
        }


DDR4_3200 = DramTiming(
    tCK_ns=0.63, CL=22, CWL=16, tRCD=22, tRP=22, tRAS=52, tCCD_S=4, tCCD_L=8, tRRD_S=4, tRRD_L=8, tFAW=34,
    tWTR_S=4, tWTR_L=12, tWR=24, tRTP=12, tRFC=560, tREFI=12480, burst_cycles=4, tRTRS=1, ranks=2,
)  # fmt: skip
"""DDR4-3200, 8 Gb x8 devices, 2 ranks: DRAMsim3's DDR4_8Gb_x8_3200 (``../shared/reference/dramsim3``)."""


@dataclass
class _Bank:
    open_row: int | None = None
    earliest: list[int] = field(default_factory=lambda: [0] * len(Command))


class ChannelTiming:
    """One channel's banks, issuing commands at the earliest times the device allows."""

    def __init__(self, timing: DramTiming) -> None:
        self.timing = timing
        self.banks = [[_Bank() for _ in range(timing.banks)] for _ in range(timing.ranks)]
        self.activates: list[list[int]] = [[] for _ in range(timing.ranks)]  # each rank's recent activates
        self._command_bus: set[int] = set()
        self.log: list[tuple[int, Command, int, int]] = []
        """Every command issued: (cycle, command, rank, bank)."""

    def access(self, rank: int, bank: int, row: int, is_write: bool, at: int) -> tuple[int, int]:
        """Open ``row`` of ``bank`` if need be and read or write a burst, from cycle ``at`` on.

        Returns the cycles at which the burst's data starts and ends on the data bus.
        """
        state = self.banks[rank][bank]
        time = at
        if state.open_row is not None and state.open_row != row:
            time = self.issue(Command.PRECHARGE, rank, bank, time)
        if state.open_row != row:
            time = self.issue(Command.ACTIVATE, rank, bank, time, row)
        column = Command.WRITE if is_write else Command.READ
        time = self.issue(column, rank, bank, time)
        start = time + (self.timing.CWL if is_write else self.timing.CL)
        return start, start + self.timing.burst_cycles

    def refresh(self, rank: int, at: int) -> int:
        """Precharge every open bank of ``rank`` and refresh it; returns the refresh's cycle."""
        for bank, state in enumerate(self.banks[rank]):
            if state.open_row is not None:
                self.issue(Command.PRECHARGE, rank, bank, at)
        return self.issue(Command.REFRESH, rank, 0, at)

    def issue(self, command: Command, rank: int, bank: int, at: int, row: int | None = None) -> int:
        """Issue ``command`` at the earliest cycle from ``at`` on that every constraint allows."""
        timing = self.timing
        targets = range(timing.banks) if command == Command.REFRESH else (bank,)
        time = max([at, *(self.banks[rank][b].earliest[command] for b in targets)])
        if command == Command.ACTIVATE and len(self.activates[rank]) >= 4:
            time = max(time, self.activates[rank][-4] + timing.tFAW)
        while time in self._command_bus:
            time += 1
        self._command_bus.add(time)
        self._apply(command, rank, bank, time)
        if command == Command.ACTIVATE:
            self.banks[rank][bank].open_row = row
            self.activates[rank] = [*self.activates[rank][-3:], time]
        elif command == Command.PRECHARGE:
            self.banks[rank][bank].open_row = None
        self.log.append((time, command, rank, bank))
        return time

    def _apply(self, command: Command, rank: int, bank: int, time: int) -> None:
        """Push every bank's earliest times past the gaps ``command`` at ``time`` imposes."""
        gaps, per_group = self.timing.gaps, self.timing.banks_per_group
        if command == Command.REFRESH:
            for state in self.banks[rank]:
                _push(state, gaps[(command, "bank")], time)
            return
        for other_rank, states in enumerate(self.banks):
            for other, state in enumerate(states):
                if other_rank != rank:
                    scope = "other_rank"
                elif other == bank:
                    scope = "bank"
                elif other // per_group == bank // per_group:
                    scope = "bankgroup"
                else:
                    scope = "rank"
                _push(state, gaps.get((command, scope), {}), time)


def _push(state: _Bank, gaps: dict[Command, int], time: int) -> None:
    for command, gap in gaps.items():
        if time + gap > state.earliest[command]:
            state.earliest[command] = time + gap
