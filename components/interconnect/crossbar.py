"""A crossbar in front of several memory channels: each byte goes to the channel its address (or operand) picks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from desim import REQUEST, RESPONSE, DesimError, Interconnect, Memory, Param, Port, Stat
from desim.data import Tile, operand_of, runs
from desim.route import Request, resume_after
from desim.workload import OPERANDS, Layer

if TYPE_CHECKING:
    from desim.channel import Transfer

SELECTS = ("address", "operand")


class Crossbar(Interconnect, Memory):
    """Splits traffic over the next levels its ``memory`` port links to (channels, in node-name order).

    With ``select: address`` the address space is interleaved over the ``N`` channels in
    granules of ``interleave_bytes``: granule ``g`` belongs to channel ``g mod N``, and a
    transaction that spans granules of several channels is split among them. With ``select:
    operand`` every byte of a tensor goes to one channel: IFMAP to the first, FILTER to the second,
    OFMAP and its partial sums to the third (counting round when there are fewer). The crossbar itself adds no time;
    give its links a bandwidth and latency. A transaction completes when every part of it has;
    its wait is nested in the stall ledger, so stalls are charged to the channel that held it up.
    With ``multicast``, a read of exactly the bytes another client's read is still fetching
    joins that fetch: the channel serves them once and both clients get them (arrays under a
    ``split`` reading the same IFMAP, say).
    """

    kind = "crossbar"

    select = Param(str, "address", choices=SELECTS, description="route by address interleaving or by operand")
    interleave_bytes = Param(int, 4096, "bytes", "granule of the address interleaving", minimum=1)
    transaction_bytes = Param(int, 4096, "bytes", "size of the transactions it takes from its clients", minimum=1)
    multicast = Param(
        bool, False, description="a read of the bytes another client's read is already fetching shares that fetch"
    )

    clients = Port(RESPONSE, "requests from buffers and levels above", multiple=True)
    memory = Port(REQUEST, "the channels it spreads traffic over", peer=Memory, multiple=True)

    bytes_by_channel = Stat("bytes", "bytes carried to and from each channel (node: bytes)", initial={})
    multicast_bytes = Stat("bytes", "bytes read once for several clients, counted once per extra client")

    def check(self) -> None:
        if len(self.memory) < 2:
            raise DesimError(
                "links to one channel; a crossbar spreads traffic over two or more", key=f"{self.name}.memory"
            )

    def hop(self, came_from: str = "", going_to: str = "") -> Crossbar:
        return self

    def begin_layer(self, layer: Layer) -> None:
        super().begin_layer(layer)
        self._fetching: dict[tuple[str, int, int], Request] = {}

    def submit(self, transfer: Transfer) -> None:
        """Pass the transaction's bytes on to their channels; it moves on once all have been served."""
        tile = transfer.tile
        channels = len(self.memory)
        if self.select == "operand":
            operand = operand_of(tile.tensor)
            parts = {OPERANDS.index(operand) % channels if operand in OPERANDS else 0: tile}
        else:
            parts = _interleave(tile, self.interleave_bytes, channels)
        write = transfer.owner.is_write
        if write:
            self.write_bytes += tile.nbytes
        else:
            self.read_bytes += tile.nbytes
        requests: list[Request] = []
        for channel, part in parts.items():
            if write:
                requests.append(self._pass(channel, part, transfer.client, write=True))
                continue
            key = (part.tensor, part.address_at(0), part.nbytes) if self.multicast else None
            shared = self._fetching.get(key) if key is not None else None
            if shared is not None and shared.client is not transfer.client:
                self.multicast_bytes += part.nbytes
                requests.append(shared)
                continue
            request = self._pass(channel, part, transfer.client, write=False)
            if key is not None:
                self._fetching[key] = request
                request.event.callbacks.append(lambda _, key=key: self._fetching.pop(key, None))
            requests.append(request)
        resume_after(transfer, requests)

    def _pass(self, channel: int, part: Tile, client: object, *, write: bool) -> Request:
        """Send ``part`` to channel ``channel`` for ``client``."""
        binding = self.memory[channel]
        node = binding.peer.name
        self.bytes_by_channel[node] = self.bytes_by_channel.get(node, 0) + part.nbytes
        return binding.route.write(part, client) if write else binding.route.read(part, client)


def _interleave(tile: Tile, granule: int, channels: int) -> dict[int, Tile]:
    """``tile`` split into the parts each channel holds, in address order within each part."""
    extents = tile.extents()
    start, stop = extents[:, 0], extents[:, 1]
    first, last = start // granule, (stop - 1) // granule
    if len(extents) == 1 and first[0] == last[0]:  # one granule: the common case, no splitting
        return {int(first[0] % channels): tile}
    counts = last - first + 1
    granules = runs(first, counts)
    pieces = np.stack(
        (
            np.maximum(np.repeat(start, counts), granules * granule),
            np.minimum(np.repeat(stop, counts), (granules + 1) * granule),
        ),
        axis=1,
    )
    owner = granules % channels
    parts = {}
    for channel in np.unique(owner).tolist():
        mine = pieces[owner == channel]
        parts[channel] = Tile(tile.tensor, int((mine[:, 1] - mine[:, 0]).sum()), mine)
    return parts
