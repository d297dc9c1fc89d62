"""DRAM command timing, gap by gap (in the manner of Ramulator's timing tests).

Each test issues the fewest commands that exercise one constraint and checks, in the command
log, that the second command came exactly the required number of cycles after the first. The
device is DDR4-3200 (8 Gb x8, 2 ranks, 4 bank groups of 4 banks) with the parameters tabled in
``../shared/reference/dramsim3/README.md``: CL 22, CWL 16, tRCD 22, tRP 22, tRAS 52, tCCD_S/L
4/8, tRRD_S/L 4/8, tFAW 34, tWTR_S/L 4/12, tWR 24, tRTP 12, tRFC 560, tRTRS 1, burst 4 cycles.
Banks 0-3 are bank group 0, banks 4-7 group 1, and so on.
"""

import pytest

from desim.components.memory.dram_presets import PRESETS, device
from desim.components.memory.dram_timing import ChannelTiming, Command

DDR4_3200 = device(PRESETS["ddr4-3200"])[0]


def channel() -> ChannelTiming:
    return ChannelTiming(DDR4_3200)


def times(ch: ChannelTiming, command: Command) -> list[int]:
    return [time for time, issued, _, _ in ch.log if issued == command]


def opened(*banks: int, rank: int = 0) -> ChannelTiming:
    """A channel whose ``banks`` have row 1 open, long ago (every constraint of opening them met by cycle 1000)."""
    ch = channel()
    for bank in banks:
        ch.issue(Command.ACTIVATE, rank, bank, 0, row=1)
    ch.log.clear()
    return ch


def test_trcd_and_cl_an_activate_then_a_read_and_its_data():
    ch = channel()
    start, end = ch.access(0, 0, 5, False, 0)
    (act,), (read,) = times(ch, Command.ACTIVATE), times(ch, Command.READ)
    assert (act, read - act) == (0, 22)  # tRCD
    assert (start - read, end - start) == (22, 4)  # CL, then a burst of 4 cycles


def test_cwl_a_writes_data_follows_it_by_the_write_latency():
    ch = opened(0)
    start, _ = ch.access(0, 0, 1, True, 1000)
    (write,) = times(ch, Command.WRITE)
    assert start - write == 16


def test_tras_and_trp_a_row_conflict_closes_the_row_then_opens_the_new_one():
    ch = channel()
    ch.access(0, 0, 1, False, 0)
    ch.access(0, 0, 2, False, 0)
    act0, act1 = times(ch, Command.ACTIVATE)
    (pre,) = times(ch, Command.PRECHARGE)
    assert pre - act0 == 52  # tRAS (the read's tRTP, 22 + 12, comes earlier)
    assert act1 - pre == 22  # tRP


def test_trtp_a_read_then_a_precharge():
    ch = opened(0)
    ch.access(0, 0, 1, False, 1000)
    ch.issue(Command.PRECHARGE, 0, 0, 1000)
    (read,), (pre,) = times(ch, Command.READ), times(ch, Command.PRECHARGE)
    assert pre - read == 12


def test_twr_a_write_then_a_precharge():
    ch = opened(0)
    ch.access(0, 0, 1, True, 1000)
    ch.issue(Command.PRECHARGE, 0, 0, 1000)
    (write,), (pre,) = times(ch, Command.WRITE), times(ch, Command.PRECHARGE)
    assert pre - write == 16 + 4 + 24  # CWL + burst + tWR


@pytest.mark.parametrize(("second", "gap"), [(1, 8), (4, 4)])  # same bank group: tCCD_L; another: tCCD_S
def test_tccd_reads_back_to_back(second, gap):
    ch = opened(0, second)
    ch.access(0, 0, 1, False, 1000)
    ch.access(0, second, 1, False, 1000)
    first, then = times(ch, Command.READ)
    assert then - first == gap


@pytest.mark.parametrize(("second", "gap"), [(1, 8), (4, 4)])  # tRRD_L, tRRD_S
def test_trrd_activates_back_to_back(second, gap):
    ch = channel()
    ch.issue(Command.ACTIVATE, 0, 0, 0, row=1)
    ch.issue(Command.ACTIVATE, 0, second, 0, row=1)
    first, then = times(ch, Command.ACTIVATE)
    assert then - first == gap


def test_tfaw_a_fifth_activate_waits_for_the_window():
    ch = channel()
    for bank in (0, 4, 8, 12, 1):  # four bank groups, then back to the first
        ch.issue(Command.ACTIVATE, 0, bank, 0, row=1)
    acts = times(ch, Command.ACTIVATE)
    assert acts[:4] == [0, 4, 8, 12]  # tRRD_S apart
    assert acts[4] == 34  # tFAW after the first (tRRD_L alone would allow 8, tRRD_S 16)


@pytest.mark.parametrize(("second", "gap"), [(1, 16 + 4 + 12), (4, 16 + 4 + 4)])  # CWL + burst + tWTR_L / tWTR_S
def test_twtr_a_write_then_a_read(second, gap):
    ch = opened(0, second)
    ch.access(0, 0, 1, True, 1000)
    ch.access(0, second, 1, False, 1000)
    (write,), (read,) = times(ch, Command.WRITE), times(ch, Command.READ)
    assert read - write == gap


def test_a_read_then_a_write_turns_the_bus_around():
    ch = opened(0, 4)
    ch.access(0, 0, 1, False, 1000)
    ch.access(0, 4, 1, True, 1000)
    (read,), (write,) = times(ch, Command.READ), times(ch, Command.WRITE)
    assert write - read == 22 + 4 - 16 + 1 + 1  # RL + burst - WL + tRPRE + tRTRS


def test_trtrs_reads_on_two_ranks():
    ch = opened(0)
    ch.issue(Command.ACTIVATE, 1, 0, 0, row=1)
    ch.log.clear()
    ch.access(0, 0, 1, False, 1000)
    ch.access(1, 0, 1, False, 1000)
    first, then = times(ch, Command.READ)
    assert then - first == 4 + 1  # burst + tRTRS


def test_trfc_a_refresh_closes_every_row_and_holds_the_rank():
    ch = opened(0, 5)
    ch.refresh(0, 1000)
    (refresh,) = times(ch, Command.REFRESH)
    assert refresh - max(times(ch, Command.PRECHARGE)) == 22  # tRP after the last precharge
    ch.access(0, 0, 1, False, refresh)
    (act,) = times(ch, Command.ACTIVATE)
    assert act - refresh == 560  # tRFC
    assert ch.open_row(1, 0) is None  # the other rank untouched, and never opened


def test_one_command_a_cycle_on_the_command_bus():
    ch = channel()
    ch.issue(Command.ACTIVATE, 0, 0, 0, row=1)
    ch.issue(Command.ACTIVATE, 1, 0, 0, row=1)  # another rank: no tRRD, but the same command bus
    assert times(ch, Command.ACTIVATE) == [0, 1]
