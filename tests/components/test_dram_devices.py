"""Every preset against closed forms of its own datasheet parameters.

DRAMsim3's figures (``test_dram_controller``) exist for two devices only; on every preset the
model must also obey what the parameters alone imply, whatever the device:

- one request at a time, its latency is the sum of the commands it needs: a burst's ``CL`` plus
  the burst on the bus, after ``tRCD`` when the bank was closed and ``tRP`` more when another
  row was open (the burst model, as DRAMsim3, moves a request to its command queue the cycle it
  arrives and issues from the next; the row model's free bank takes it at once);
- random reads, each needing an activate, cannot beat four activates per ``tFAW`` on each rank,
  and with enough in flight come close to it (DRAMsim3's own DDR4-3200 and HBM2 random-read
  figures sit at 86% and 90% of this bound).
"""

from __future__ import annotations

import numpy as np
import pytest

from desim.components.memory.dram_controller import DramController, Organisation
from desim.components.memory.dram_presets import PRESETS, device
from desim.components.memory.dram_rows import RowController

CONTROLLERS = {"bursts": DramController, "rows": RowController}
HANDOVER = {"bursts": 1, "rows": 0}
"""Cycles from a request's arrival to its first command, bank and bus free."""


def address(org: Organisation, **fields: int) -> int:
    """The byte address of the burst with these mapping fields (the others 0)."""
    line = sum(fields.get(name, 0) << shift for name, shift, _ in org.decoder())
    return line * org.burst_bytes


def read_alone(controller: DramController | RowController, address: int, at: int) -> int:
    """Hand one burst-sized read over at ``at`` with nothing else under way; its completion cycle."""
    controller.advance(at)
    controller.add(address, controller.organisation.burst_bytes, False, address, at)
    controller.advance(at + 500)  # long enough, and before any refresh falls due
    [(cycle, _, _)] = controller.completed(at + 500)
    return cycle


@pytest.mark.parametrize("model", CONTROLLERS)
@pytest.mark.parametrize("preset", PRESETS)
def test_one_request_at_a_time_takes_the_sum_of_its_commands(preset, model):
    timing, org, settings = device(PRESETS[preset])
    controller = CONTROLLERS[model](timing, org, settings)
    data = timing.CL + timing.burst_cycles
    rcd = timing.tRCDRD if timing.tRCDRD is not None else timing.tRCD
    first = HANDOVER[model]
    # A closed bank: activate, read tRCD later.
    assert read_alone(controller, address(org, ro=5), 0) == first + rcd + data
    # The open row, long after: the read at once.
    assert read_alone(controller, address(org, ro=5, co=1), 1000) == 1000 + first + data
    # Another row of that bank: precharge, tRP, activate, tRCD, read.
    assert read_alone(controller, address(org, ro=9), 2000) == 2000 + first + timing.tRP + rcd + data


@pytest.mark.parametrize("model", CONTROLLERS)
@pytest.mark.parametrize("preset", PRESETS)
def test_random_reads_approach_four_activates_per_tfaw(preset, model):
    timing, org, settings = device(PRESETS[preset])
    controller = CONTROLLERS[model](timing, org, settings)
    n = 3000
    lines = np.random.default_rng(7).integers(0, (1 << 30) // org.burst_bytes, n)
    for key, line in enumerate(lines.tolist()):
        controller.add(line * org.burst_bytes, org.burst_bytes, False, key, 0)
    done: list = []
    while len(done) < n:
        due = controller.next_event()
        assert due < float("inf"), "the controller stopped with reads outstanding"
        controller.advance(int(due))
        done += controller.completed(controller.clk)
    last = max(cycle for cycle, _, _ in done)
    bound = 4 / timing.tFAW * timing.ranks * org.channels  # activates (= reads) a cycle
    assert 0.8 * bound <= n / last <= bound, (n / last, bound)
