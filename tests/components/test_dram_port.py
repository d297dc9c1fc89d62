"""The DRAM port's optimism: running the controller ahead and rolling it back changes nothing.

Several clients hand transfers to one :class:`DramPort` at times that depend on earlier
completions (some the very cycle a transfer completes, which once made the port save a state it
had already run ahead of). Each transfer must complete exactly when a controller fed the same
arrivals and stepped cycle by cycle says it does.
"""

from __future__ import annotations

import math
import random

import simpy

from desim.components.memory.dram_controller import DramController
from desim.components.memory.dram_port import DramPort
from desim.components.memory.dram_presets import PRESETS, device


class _Owner:
    def __init__(self, is_write: bool) -> None:
        self.is_write = is_write


class _Transfer:
    """What the port reads of a transfer, and the event its completion (``advance``) fires."""

    def __init__(self, env: simpy.Environment, address: int, nbytes: int, is_write: bool) -> None:
        self.address, self.nbytes = address, nbytes
        self.owner = _Owner(is_write)
        self.log: list = []
        self.submitted_at = 0
        self.done = env.event()

    def advance(self) -> None:
        self.done.succeed()


class _Dram:
    name = "dram"


def _client(env, port, rng, arrivals, done, name, count):
    for i in range(count):
        address = rng.randrange(0, 1 << 24) & ~63
        nbytes = rng.choice((64, 256, 4096))
        transfer = _Transfer(env, address, nbytes, rng.random() < 0.3)
        port.submit(transfer)
        arrivals.append((port.controller.clk, address, nbytes, transfer.owner.is_write, (name, i)))
        yield transfer.done
        done[(name, i)] = env.now
        gap = rng.choice((0, 0, 1, 3, 17, 250))
        if gap:
            yield env.timeout(gap)


def _stepped(params, arrivals):
    """When each transfer completes (memory cycles) with the controller stepped cycle by cycle."""
    controller = DramController(*device(params))
    completes = {}
    for at, address, nbytes, is_write, key in sorted(arrivals, key=lambda a: a[0]):
        controller.run(at)
        controller.add(address, nbytes, is_write, key, at)
    while len(completes) < len(arrivals):
        controller.run(controller.clk + 1)
        for cycle, owner, _ in controller.completed(controller.clk):
            completes[owner.token] = cycle
    return completes


def test_run_ahead_and_roll_back_equal_stepping_cycle_by_cycle():
    params = PRESETS["ddr4-3200"]
    for seed in range(3):
        env = simpy.Environment()
        port = DramPort(_Dram(), env, 1000, *device(params))
        rng = random.Random(seed)
        arrivals: list = []
        done: dict = {}
        for name in "abc":
            env.process(_client(env, port, rng, arrivals, done, name, 40))
        env.run()
        assert len(done) == 120
        expected = _stepped(params, arrivals)
        got = {key: when for key, when in done.items()}
        want = {key: math.ceil(cycle * port.ratio) for key, cycle in expected.items()}
        assert got == want, f"seed {seed}"
