"""Named DRAM devices: timing in memory cycles, organisation per channel, and controller settings.

Every number is a device's datasheet figure as DRAMsim3's device configs carry it (its
``configs/*.ini``; DDR4-3200 and HBM2 as tabled in ``../shared/reference/dramsim3/README.md``),
except as noted here. HBM2 is the 8 GB stack DRAMsim3 simulates from ``HBM2_8Gb_x128.ini``:
a channel of 1 GiB is one rank of 16 banks with 2 KiB rows (DRAMsim3 doubles an HBM "column" to
128 of them and derives the ranks from the channel size, where the reference README tables 2
ranks of 1 KiB rows), one tRTP of 5 (DRAMsim3's default: it reads neither tRTP_S 4 nor tRTP_L 6),
tRTRS 2 (its default) and a command queue of 32 per rank (its PER_RANK). LPDDR4-3200 is JEDEC
JESD209-4's speed bin converted at tCK 0.625 ns (18 ns tRCD and tRPpb -> 29 cycles, 42 ns tRAS
-> 68, 10 ns tRRD -> 16, 40 ns tFAW -> 64, 10 ns tWTR -> 16, 18 ns tWR -> 29, 7.5 ns tRTP -> 12,
8 Gb tRFCab 280 ns -> 448, tREFI 3.9 us -> 6240). A preset is a starting point: ``dram`` takes
any of these keys as a parameter to override it.
"""

from __future__ import annotations

import dataclasses

from desim.components.memory.dram_controller import Organisation, Settings
from desim.components.memory.dram_timing import DramTiming

_CONTROLLER = {
    "row_policy": "open",
    "scheduler": "fr-fcfs",
    "row_hit_cap": 4,
    "transaction_queue": 32,
    "command_queue": 8,
    "write_drain_low": 16,
    "queue_structure": "per-bank",
    "tRTRS": 1,
    "tRPRE": 1,
    "tWPRE": 1,
    "dual_command": False,
}

PRESETS: dict[str, dict[str, object]] = {
    "ddr3-1600": {
        **_CONTROLLER,
        "tCK_ns": 1.25, "CL": 11, "CWL": 8, "tRCD": 11, "tRP": 11, "tRAS": 28,
        "tCCD_S": 4, "tCCD_L": 4, "tRRD_S": 6, "tRRD_L": 6, "tFAW": 32,
        "tWTR_S": 6, "tWTR_L": 6, "tWR": 12, "tRTP": 6, "tRFC": 280, "tREFI": 6240,
        "tRPRE": 0, "tWPRE": 0,
        "channels": 1, "ranks": 2, "bankgroups": 1, "banks_per_group": 8, "rows": 65536, "columns": 2048,
        "bus_bits": 64, "burst_length": 8, "address_mapping": "ro ch ra ba bg co",
    },
    "ddr4-2400": {
        **_CONTROLLER,
        "tCK_ns": 0.833, "CL": 16, "CWL": 16, "tRCD": 16, "tRP": 16, "tRAS": 39,
        "tCCD_S": 4, "tCCD_L": 6, "tRRD_S": 4, "tRRD_L": 6, "tFAW": 26,
        "tWTR_S": 3, "tWTR_L": 9, "tWR": 19, "tRTP": 9, "tRFC": 420, "tREFI": 9364, "tRTRS": 2,
        "channels": 1, "ranks": 1, "bankgroups": 4, "banks_per_group": 4, "rows": 65536, "columns": 1024,
        "bus_bits": 64, "burst_length": 8, "address_mapping": "ro ch ra ba bg co",
    },
    "ddr4-3200": {
        **_CONTROLLER,
        "tCK_ns": 0.63, "CL": 22, "CWL": 16, "tRCD": 22, "tRP": 22, "tRAS": 52,
        "tCCD_S": 4, "tCCD_L": 8, "tRRD_S": 4, "tRRD_L": 8, "tFAW": 34,
        "tWTR_S": 4, "tWTR_L": 12, "tWR": 24, "tRTP": 12, "tRFC": 560, "tREFI": 12480,
        "channels": 1, "ranks": 2, "bankgroups": 4, "banks_per_group": 4, "rows": 65536, "columns": 1024,
        "bus_bits": 64, "burst_length": 8, "address_mapping": "ro ch ra ba bg co",
    },
    "lpddr4-3200": {
        **_CONTROLLER,
        "tCK_ns": 0.625, "CL": 28, "CWL": 14, "tRCD": 29, "tRP": 29, "tRAS": 68,
        "tCCD_S": 8, "tCCD_L": 8, "tRRD_S": 16, "tRRD_L": 16, "tFAW": 64,
        "tWTR_S": 16, "tWTR_L": 16, "tWR": 29, "tRTP": 12, "tRFC": 448, "tREFI": 6240,
        "channels": 2, "ranks": 1, "bankgroups": 1, "banks_per_group": 8, "rows": 65536, "columns": 1024,
        "bus_bits": 16, "burst_length": 16, "address_mapping": "ro ra ba bg co ch",
    },
    "hbm2": {
        **_CONTROLLER,
        "tCK_ns": 1.0, "CL": 14, "CWL": 4, "tRCD": 14, "tRP": 14, "tRAS": 34,
        "tCCD_S": 1, "tCCD_L": 2, "tRRD_S": 4, "tRRD_L": 6, "tFAW": 30,
        "tWTR_S": 6, "tWTR_L": 8, "tWR": 16, "tRTP": 5, "tRFC": 260, "tREFI": 3900, "tRTRS": 2,
        "channels": 8, "ranks": 1, "bankgroups": 4, "banks_per_group": 4, "rows": 32768, "columns": 128,
        "bus_bits": 128, "burst_length": 4, "address_mapping": "ro ra bg ba ch co", "dual_command": True,
        "queue_structure": "per-rank", "command_queue": 32,
    },
}  # fmt: skip


def device(params: dict[str, object]) -> tuple[DramTiming, Organisation, Settings]:
    """A preset's (or any complete parameter set's) timing, organisation and controller settings."""
    pick = lambda cls: cls(**{f.name: params[f.name] for f in dataclasses.fields(cls) if f.init and f.name in params})  # noqa: E731
    return pick(DramTiming), pick(Organisation), pick(Settings)
