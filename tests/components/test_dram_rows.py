"""The row model against the burst model it abbreviates, on streams of kilobyte requests.

The burst model (checked against DRAMsim3 in ``test_dram_controller``) issues every command; the
row model schedules a request's bursts to one row as a run and lets runs share the bus as rates.
On the streams a running system makes (4 KiB requests: sequential reads and writes, random
tiles, two interleaved streams, a read/write mix) both must finish within a bound of each other:
5% where reads and writes do not mix, 15% for the mix (the row model drains writes a run at a
time, and so turns the bus around less often than a drain of ``transaction_queue`` bursts).
"""

from __future__ import annotations

import numpy as np
import pytest

from desim.components.memory.dram_controller import DramController, Served
from desim.components.memory.dram_presets import PRESETS, device
from desim.components.memory.dram_rows import RowController

KIB4 = 4096
STREAMS = ("seq_read", "seq_write", "rand_tiles", "two_streams", "rw_mix")


def requests(pattern: str, n: int) -> list[tuple[int, bool]]:
    i = np.arange(n)
    if pattern in ("seq_read", "seq_write"):
        return [(int(a), pattern == "seq_write") for a in i * KIB4]
    if pattern == "rand_tiles":
        return [(int(a) * KIB4, False) for a in np.random.default_rng(1).integers(0, (1 << 30) // KIB4, n)]
    if pattern == "two_streams":
        return [(int(a), False) for a in (i % 2) * (256 << 20) + (i // 2) * KIB4]
    write = i % 3 == 2
    address = np.where(write, (512 << 20) + (i // 3) * KIB4, (i - i // 3) * KIB4)
    return [(int(a), bool(w)) for a, w in zip(address, write, strict=True)]


def finish_by_bursts(stream: list[tuple[int, bool]], params: dict) -> int:
    controller = DramController(*device(params))
    for key, (address, is_write) in enumerate(stream):
        controller.add(address, KIB4, is_write, key, 0)
    last = 0
    for _ in stream:
        controller.run(float("inf"), stop_at_completion=True)
        for cycle, _, _ in controller.completed(controller.clk):
            last = max(last, cycle)
    return last


def finish_by_rows(stream: list[tuple[int, bool]], params: dict) -> int:
    controller = RowController(*device(params))
    for key, (address, is_write) in enumerate(stream):
        controller.add(address, KIB4, is_write, key, 0)
    done = []
    while len(done) < len(stream):
        due = controller.next_event()
        assert due < float("inf"), "the row model stopped with requests outstanding"
        controller.advance(int(due))
        done += controller.completed(controller.clk)
    return max(cycle for cycle, _, _ in done)


@pytest.mark.parametrize("pattern", STREAMS)
def test_rows_finish_with_the_bursts(pattern):
    params = PRESETS["ddr4-3200"]
    stream = requests(pattern, 400)
    bursts, rows = finish_by_bursts(stream, params), finish_by_rows(stream, params)
    bound = 0.15 if pattern == "rw_mix" else 0.05
    assert abs(rows - bursts) <= bound * bursts, (pattern, bursts, rows)


def test_one_run_streams_at_its_banks_pace():
    """One 4 KiB read alone: activate, tRCD, 64 column commands tCCD_L apart, then CL and a burst."""
    params = PRESETS["ddr4-3200"]
    controller = RowController(*device(params))
    controller.add(0, KIB4, False, "a", 0)
    controller.advance(10_000)
    [(cycle, owner, served)] = controller.completed(10_000)
    timing = device(params)[0]
    assert served.issued == timing.tRCD
    assert cycle == timing.tRCD + 63 * max(timing.tCCD_L, timing.burst_cycles) + timing.CL + timing.burst_cycles
    assert owner.token == "a"


def _served(controller: RowController, until: int) -> dict:
    controller.advance(until)
    return {owner.token: served for _, owner, served in controller.completed(until)}


def test_what_a_run_waited_for():
    """The waits the ledger charges, derived by hand on DDR4-3200 (tRCD = CL = tRP = 22, tCCD_L 8,
    tRTP 12, tRFC 560, a burst 4 cycles, a transaction queue of 32 bursts, command queues of 8;
    rows 256 KiB apart share a bank, bank groups are 8 KiB apart)."""
    params = PRESETS["ddr4-3200"]

    # Bank busy: B's row is in A's bank. A activates at 0, reads at 22 + 8k, its last at 526.
    # B comes in once A's queue share is under 32 bursts (55 - (t - 22) / 8 < 32: t = 207),
    # its bank takes it when A ends (526), precharges at 526 + tRTP = 538, activates at 560,
    # reads from 582 to 1086, done 26 later.
    controller = RowController(*device(params))
    controller.add(0, KIB4, False, "A", 0)
    controller.add(1 << 18, KIB4, False, "B", 0)
    served = _served(controller, 2000)
    b = served["B"]
    assert (b.accepted, b.taken, b.held, b.issued, b.complete) == (207, 526, Served.BANK, 582, 1112)
    assert b.how == Served.CONFLICT
    assert (served["A"].held, served["A"].complete) == (Served.NOTHING, 552)

    # Refresh: rank 0's first refresh falls due at tREFI / ranks - 1 = 6239. Bank 0 is open (a read
    # at 6000), so the refresh precharges it at 6239 and refreshes at 6261; a read arriving at 6239
    # is taken then, activates tRFC later (6821) and reads at 6843.
    controller = RowController(*device(params))
    controller.advance(6000)
    controller.add(0, 64, False, "open", 6000)
    controller.advance(6239)
    controller.add(64, 64, False, "R", 6239)
    r = _served(controller, 8000)["R"]
    assert (r.accepted, r.taken, r.held, r.issued, r.complete) == (6239, 6261, Served.REFRESH, 6843, 6869)
    # The burst model has the same refresh, and charges the read's whole wait to it.
    bursts = DramController(*device(params))
    bursts.run(6000)
    bursts.add(0, 64, False, "open", 6000)
    bursts.run(6239)
    bursts.add(64, 64, False, "R", 6239)
    bursts.run(8000)
    (r,) = [served for _, owner, served in bursts.completed(8000) if owner.token == "R"]
    assert (r.accepted, r.taken, r.held, r.issued, r.complete) == (6239, 6239, Served.REFRESH, 6843, 6869)

    # Turnaround: 32 writes fill the write queue, so it drains before the read behind them. They
    # write bank 0 from 22, 8 apart; the last is taken at 262, and so is the read (bank 4, 8 KiB
    # up): it activates then and reads once the last write (270) allows, 16 + 4 + tWTR_S 4 later.
    controller = RowController(*device(params))
    for i in range(32):
        controller.add(64 * i, 64, True, f"W{i}", 0)
    controller.add(8192, 64, False, "R", 0)
    r = _served(controller, 2000)["R"]
    assert (r.accepted, r.taken, r.held, r.issued, r.complete) == (0, 262, Served.DRAIN, 294, 320)


def test_room_in_a_queue_does_not_depend_on_when_it_is_asked():
    """While the inbox's first request waits for its queue to have room, the cycle the streams
    make it is one and the same whenever asked (up to the channel's next event): a settle that
    comes again, say because another request arrived, does not move it. It is the cycle the
    queue's bursts first fall under its capacity, counted here run by run."""
    params = PRESETS["ddr4-3200"]
    rng = np.random.default_rng(3)
    controller = RowController(*device(params))
    for key in range(200):
        address, size = int(rng.integers(0, 1 << 20)) * 64, int(rng.choice([640, 1280, KIB4]))
        controller.add(address, size, bool(rng.random() < 0.3), key, 0)

    def held(channel, kind, at):
        """Bursts the queue holds at ``at``: those queued, and each streaming run's beyond what
        its bank's command queue takes."""
        extra = (s[4] - s[5] * (at - s[6]) - channel.depth for s in channel.streams if s[0].is_write == kind)
        return channel.fixed[kind] + sum(max(0.0, e) for e in extra)

    asked = 0
    while controller.head < len(controller.inbox):
        controller.advance(controller.clk + 1)
        if controller.head == len(controller.inbox):
            break
        head, t = controller.inbox[controller.head], controller.clk
        channel, kind = controller.channels[head.channel], int(head.is_write)
        room = channel.room_from(kind, t + 1)
        if t + 1 < room < float("inf"):
            asked += 1
            later = {channel.room_from(kind, x) for x in range(t + 1, min(room, channel.next_time(t)) + 1)}
            assert later == {room}, (t, room, later)
            # Full the cycle before, not from then on (up to rounding at an exact tie).
            assert held(channel, kind, room - 1) > channel.capacity - 1e-6, (t, room)
            assert held(channel, kind, room) < channel.capacity + 1e-6, (t, room)
    assert asked > 1000
