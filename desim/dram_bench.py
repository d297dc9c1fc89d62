"""Drive one memory of a system alone with a stream of requests (``desim dram-bench``).

A stream file has one request a line, ``<hex byte address> <R|W>`` (the format of DRAMsim3-style
reference streams); each moves ``line_bytes`` from that address. Requests are handed to the
memory in order, as fast as it takes them, with at most ``max_in_flight`` outstanding (none: no
limit but the memory's own); each is one of the memory's transactions (its ``transaction_bytes``
is set to ``line_bytes`` where it declares one). The result says when the last one completed and the mean read
latency (hand-over to the last byte back), so a memory model's timing can be set beside another
simulator's on the very same addresses. Engine code: it knows the ``Memory`` role, not a kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import simpy

from desim.component import Memory
from desim.data import Tile
from desim.errors import DesimError, read_text
from desim.params import brief
from desim.route import Request, Route
from desim.workload import Layer

if TYPE_CHECKING:
    from desim.component import ProcessGenerator
    from desim.system import System

STREAM_TENSOR = "stream"
"""The tensor a stream's requests name (their addresses are the stream's own)."""
DRIVER = "dram-bench"


@dataclass(frozen=True)
class BenchResult:
    """What a stream cost a memory."""

    requests: int
    bytes: int
    cycles: int
    """When the last request completed, in the system's clock cycles."""
    ns: float
    gbps: float
    read_latency_ns: float | None
    """Mean time from hand-over to the read's last byte; None for a stream without reads."""

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "requests": self.requests,
            "bytes": self.bytes,
            "cycles": self.cycles,
            "ns": self.ns,
            "GBps": self.gbps,
            "read_latency_ns": self.read_latency_ns,
        }


def read_stream(path: str | Path) -> list[tuple[int, bool]]:
    """The requests of a stream file: ``(address, is_write)``, or a DesimError naming the line."""
    requests = []
    for number, line in enumerate(read_text(path, "stream file").splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 2 or fields[1].upper() not in ("R", "W"):
            raise DesimError(
                f"expected '<hex address> R' or '<hex address> W', got {brief(line)}", file=path, line=number
            )
        try:
            if "_" in fields[0]:  # Python's digit grouping, which no stream file means
                raise ValueError
            address = int(fields[0], 16)
        except ValueError:
            raise DesimError(
                f"expected a hexadecimal address, got {brief(fields[0])}", file=path, line=number
            ) from None
        if not 0 <= address < 1 << 62:
            raise DesimError(f"the address {fields[0]} is out of range", file=path, line=number)
        requests.append((address, fields[1].upper() == "W"))
    if not requests:
        raise DesimError("the stream holds no requests", file=path)
    return requests


def memory_node(system: System, node: str | None) -> str:
    """The memory to drive: ``node``, or the system's one main memory."""
    memories = system.nodes_of(Memory)
    if node is not None:
        if node not in memories:
            raise DesimError(f"is not a memory of this system (memories: {', '.join(memories)})", key=node)
        return node
    main = system.main_memories()
    if len(main) != 1:
        raise DesimError(f"the system has {len(main)} main memories ({', '.join(main)}); name one with --node")
    return main[0]


def bench(
    system: System, node: str, stream: list[tuple[int, bool]], line_bytes: int = 64, max_in_flight: int | None = None
) -> BenchResult:
    """Hand ``stream`` to memory ``node`` of ``system`` (elaborated afresh) and time it."""
    if "transaction_bytes" in system.kind_of(node).declared_params:  # each line is one transaction
        system = system.with_param(node, "transaction_bytes", line_bytes)
    env = simpy.Environment()
    components = system.elaborate(env)
    memory = components[node]
    for component in components.values():
        component.begin_layer(Layer.gemm(DRIVER, 1, 1, 1))
    route = Route(env, [DRIVER, node], memory, (), ())
    latencies: list[int] = []
    done = env.process(_drive(env, route, stream, line_bytes, max_in_flight or len(stream), latencies))
    env.run(until=done)
    cycles = int(env.now)
    ns = cycles * 1000 / system.clock_mhz
    moved = len(stream) * line_bytes
    mean = sum(latencies) / len(latencies) * 1000 / system.clock_mhz if latencies else None
    return BenchResult(len(stream), moved, cycles, ns, moved / ns if ns else float("inf"), mean)


def _drive(
    env: simpy.Environment,
    route: Route,
    stream: list[tuple[int, bool]],
    line_bytes: int,
    limit: int,
    latencies: list[int],
) -> ProcessGenerator:
    """Issue the requests in order, at most ``limit`` outstanding; end when all have completed."""
    waiting: list[simpy.Event] = []  # the driver's wait for a request to complete, if it waits
    outstanding = [0]

    def completed(event: simpy.Event) -> None:
        request: Request = event.value
        if not request.is_write:
            # From hand-over: a memory whose queue was full took the request in later than it was made.
            log = request.last.log if request.last is not None else []
            taken = max([request.issued_at, *(getattr(entry, "handed_over", 0) for entry in log)])
            latencies.append(env.now - taken)
        outstanding[0] -= 1
        if waiting:
            waiting.pop().succeed()

    for address, is_write in stream:
        while outstanding[0] >= limit:
            waiting.append(env.event())
            yield waiting[-1]
        tile = Tile(STREAM_TENSOR, line_bytes, np.array([[address, address + line_bytes]], dtype=np.int64))
        request = route.write(tile, DRIVER) if is_write else route.read(tile, DRIVER)
        outstanding[0] += 1
        request.event.callbacks.append(completed)
    while outstanding[0]:
        waiting.append(env.event())
        yield waiting[-1]
