"""A plug-in from outside desim: a compressor between a storage level and the DRAM.

Written only against ``desim``'s public names, as a user's package would be. It squeezes every
transaction that passes to ``1 / ratio`` of its bytes on the way down (and expands it on the way
back), taking ``nbytes / bandwidth`` cycles of its engine to do so.
"""

from desim import REQUEST, RESPONSE, Channel, Memory, Param, Port, Stat, resume_after


class Compressor(Memory):
    """Compresses writes and decompresses reads by ``ratio``, one engine for both."""

    kind = "compressor"

    ratio = Param(float, 2.0, "", "uncompressed bytes per compressed byte", minimum=1.0)
    bandwidth_bytes_per_cycle = Param(float, 64.0, "bytes/cycle", "engine throughput", minimum=0.001)
    transaction_bytes = Param(int, 4096, "bytes", "size of the transactions it takes", minimum=1)

    clients = Port(RESPONSE, "requests from above", multiple=True)
    memory = Port(REQUEST, "towards main memory", peer=Memory)

    bytes_in = Stat("bytes", "uncompressed bytes that passed")
    bytes_out = Stat("bytes", "compressed bytes sent down or fetched")

    def elaborate(self, env, system):
        super().elaborate(env, system)
        self.engine = Channel(env, self.name, self.bandwidth_bytes_per_cycle)

    def read_hops(self):
        return (self, self.engine)  # fetch compressed, then decompress

    def write_hops(self):
        return (self.engine, self)  # compress, then send down

    def channels(self):
        return [self.engine]  # its traffic figures and its peak in the reports, its track in a trace

    def stall_causes(self):
        return [*self.engine.stall_causes(), *super().stall_causes()]

    def submit(self, transfer):
        tile = transfer.tile
        squeezed = tile.part(0, max(1, round(tile.nbytes / self.ratio)))
        self.bytes_in += tile.nbytes
        self.bytes_out += squeezed.nbytes
        route = self.memory.route
        if transfer.owner.is_write:
            self.write_bytes += tile.nbytes
            request = route.write(squeezed, transfer.client)
        else:
            self.read_bytes += tile.nbytes
            request = route.read(squeezed, transfer.client)
        resume_after(transfer, [request])
