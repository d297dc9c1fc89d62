"""The DRAM devices beside DRAMsim3, and what they change in a whole network's run.

1. Every row of DRAMsim3's table (``tests/data/dramsim3/README.md``: DDR4-3200 and HBM2 on the
   standard streams of ``streams.py`` there), driven through ``desim dram-bench``'s code on
   ``configs/dram/<preset>.yaml``: GB/s and mean read latency side by side, with the difference.
2. AlexNet and ResNet-50 on SCALE-Sim's 32x32 ws system with ``preset: ddr4-3200`` and with the
   bandwidth pipe at the same peak (25.4 bytes a cycle at 1 GHz) and its idle read latency (30
   cycles: tRCD + CL + a burst at 0.63 ns): the real command line in a child process, median CPU
   seconds over ``--repeat`` runs, total cycles, stall share and the three largest causes.

    python benchmarks/bench_dram.py                     # the table at full length, then the networks
    python benchmarks/bench_dram.py --requests 20000    # rows of more requests cut to 20,000
    python benchmarks/bench_dram.py --only table        # or: --only networks
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_cli import ROOT, median_run

sys.path.insert(0, str(ROOT / "tests"))  # DRAMsim3's table and streams, read as the tests read them
DEVICES = {"DDR4-3200": "ddr4-3200", "HBM2": "hbm2"}
NETWORKS = {"alexnet": "topologies/conv/alexnet.csv", "resnet50": "topologies/conv/resnet50.csv"}
PIPE = "{kind: dram, bandwidth_bytes_per_cycle: 25.3968, latency_cycles: 30, transaction_bytes: 4096}"


def table(cap: int | None) -> None:
    from helpers import reference_rows, reference_stream

    from desim.dram_bench import bench, memory_node
    from desim.io.arch_yaml import read_arch_yaml

    print(f"{'device':<10} {'stream':<12} {'requests':>9} {'limit':>6}   GB/s: DRAMsim3  desim   diff"
          f"   read ns: DRAMsim3  desim   diff   cpu s")  # fmt: skip
    for device, pattern, requests, limit, gbps, latency in reference_rows():
        system = read_arch_yaml(ROOT / "configs" / "dram" / f"{DEVICES[device]}.yaml")
        n = min(requests, cap) if cap else requests
        stream = reference_stream(pattern, n)
        started = time.process_time()
        result = bench(system, memory_node(system, None), stream, 64, limit)
        cpu = time.process_time() - started
        ours = result.read_latency_ns
        lat = "-" if latency is None else f"{latency:8.1f} {ours:6.1f} {100 * (ours / latency - 1):+5.1f}%"
        print(f"{device:<10} {pattern:<12} {n:>9,} {limit or '-':>6}   {gbps:14.2f} {result.gbps:6.2f} "
              f"{100 * (result.gbps / gbps - 1):+5.1f}%   {lat:>24}   {cpu:5.1f}")  # fmt: skip


def run_totals(outdir: Path) -> tuple[int, float, list[tuple[str, float]]]:
    """Total cycles, stall share (%) and the three largest stall causes (% of total) of a run."""
    (summary,) = outdir.glob("*/SUMMARY.json")
    totals = json.loads(summary.read_text())["totals"]
    total = totals["total_cycles"]
    causes = sorted(totals["stall_causes"].items(), key=lambda item: -item[1])[:3]
    return total, 100 * totals["stall_cycles"] / total, [(name, 100 * cycles / total) for name, cycles in causes]


def networks(repeat: int) -> None:
    device = ROOT / "configs" / "dram" / "ddr4-3200.yaml"
    with tempfile.TemporaryDirectory() as scratch:
        pipe = Path(scratch) / "ddr4-3200-pipe.yaml"
        text = device.read_text()
        pipe.write_text(re.sub(r"dram:\s*\{kind: dram[^}]*\}", f"dram: {PIPE}", text).replace("ddr4-3200", "pipe"))
        header = f"{'network':<9} {'dram':<10} {'cpu s':>6} {'total cycles':>13} {'stall':>6}"
        print(f"\n{header}  largest causes (% of cycles)")
        for network, topology in NETWORKS.items():
            for label, arch in (("pipe", pipe), ("ddr4-3200", device)):
                outdir = Path(scratch) / f"{network}-{label}"
                args = ["run", "-a", str(arch), "-t", topology, "-p", str(outdir), "-q"]
                cpu, _ = median_run(args, repeat)
                total, stall, causes = run_totals(outdir)
                shown = ", ".join(f"{name} {share:.1f}" for name, share in causes)
                print(f"{network:<9} {label:<10} {cpu:6.2f} {total:13,} {stall:5.1f}%  {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, help="cut longer rows of the table to this many requests")
    parser.add_argument("--repeat", type=int, default=3, help="runs per network case (median)")
    parser.add_argument("--only", choices=("table", "networks"))
    args = parser.parse_args()
    if args.only != "networks":
        table(args.requests)
    if args.only != "table":
        networks(args.repeat)


if __name__ == "__main__":
    main()
