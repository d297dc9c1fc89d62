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

from desim.components.memory.dram_controller import DramController
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
