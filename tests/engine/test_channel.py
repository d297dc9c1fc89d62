"""Channel timing, checked against exact event logs."""

import simpy

from desim.channel import Channel, Transfer


class Log:
    def __init__(self, env):
        self.env = env
        self.events = []

    def transfer_done(self, transfer):
        self.events.append((transfer.nbytes, self.env.now))


def send(env, log, hops, *sizes):
    for size in sizes:
        Transfer(size, tuple(hops), log).start()


def test_fifo_at_bandwidth():
    env = simpy.Environment()
    log = Log(env)
    channel = Channel(env, "c", bandwidth_bytes_per_cycle=4)
    send(env, log, [channel], 8, 4, 16)
    env.run()
    assert log.events == [(8, 2), (4, 3), (16, 7)]
    assert channel.busy_cycles == 7
    assert channel.wait_cycles == 2 + 3  # the 2nd waited 2 cycles, the 3rd 3
    assert channel.max_queue == 3


def test_latency_is_pipelined():
    env = simpy.Environment()
    log = Log(env)
    channel = Channel(env, "c", bandwidth_bytes_per_cycle=4, latency_cycles=10)
    send(env, log, [channel], 4, 4)
    env.run()
    assert log.events == [(4, 11), (4, 12)]


def test_fractional_bandwidth_loses_nothing_to_rounding():
    env = simpy.Environment()
    log = Log(env)
    channel = Channel(env, "c", bandwidth_bytes_per_cycle=3)
    send(env, log, [channel], *([4] * 3))  # 4/3 cycles each: done at 4/3, 8/3, 4
    env.run()
    assert log.events == [(4, 2), (4, 3), (4, 4)]


def test_an_idle_gap_restarts_service_from_arrival():
    env = simpy.Environment()
    log = Log(env)
    channel = Channel(env, "c", bandwidth_bytes_per_cycle=2)
    send(env, log, [channel], 4)
    env.timeout(10).callbacks.append(lambda _: send(env, log, [channel], 4))
    env.run()
    assert log.events == [(4, 2), (4, 12)]


def test_ideal_channel_passes_at_once_and_counts():
    env = simpy.Environment()
    log = Log(env)
    channel = Channel(env, "c")
    send(env, log, [channel], 100)
    assert log.events == [(100, 0)]
    assert (channel.bytes, channel.transfers) == (100, 1)


def test_transfers_cross_hops_in_order():
    env = simpy.Environment()
    log = Log(env)
    slow, fast = Channel(env, "slow", 1), Channel(env, "fast", 4, latency_cycles=1)
    send(env, log, [slow, fast], 4, 4)
    env.run()
    # slow: done at 4 and 8; fast: 1 cycle of service + 1 of latency after each
    assert log.events == [(4, 6), (4, 10)]


def test_tiny_and_decimal_bandwidths_are_exact():
    env = simpy.Environment()
    log = Log(env)
    send(env, log, [Channel(env, "c", bandwidth_bytes_per_cycle=1e-9)], 1)
    env.run()
    assert log.events == [(1, 1_000_000_000)]
    env = simpy.Environment()
    log = Log(env)
    send(env, log, [Channel(env, "c", bandwidth_bytes_per_cycle=0.1)], *([1] * 10))
    env.run()
    assert log.events[-1] == (1, 100)  # ten bytes at a tenth of a byte per cycle
