"""What the mappers cost and what they buy: AlexNet and ResNet-50 on ``configs/scale_dram10.yaml``.

For each network and mapper (``scalesim``, ``psum-resident``, ``min-traffic``) it runs the real
command line in a child process several times and prints the median CPU seconds and peak memory,
the CPU time against the ``scalesim`` run's, and from the run's reports: total and stall cycles,
DRAM bytes, and the partial sums among them. Then, in this process, the time the mapper itself
takes to choose every layer's mapping, against a whole ``scalesim`` run.

    python benchmarks/bench_mappers.py            # 3 runs per case
    python benchmarks/bench_mappers.py --repeat 5
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_cli import ROOT, median_run

CONFIG = ROOT / "configs" / "scale_dram10.yaml"
TOPOLOGIES = {"alexnet": "topologies/conv/alexnet.csv", "resnet50": "topologies/conv/resnet50.csv"}
MAPPERS = ("scalesim", "psum-resident", "min-traffic")


def totals(outdir: Path) -> tuple[int, int, int, int]:
    """Total and stall cycles, DRAM bytes, and DRAM bytes of partial sums, from a run's reports."""
    (folder,) = (path.parent for path in outdir.glob("*/SUMMARY.json"))
    summary = json.loads((folder / "SUMMARY.json").read_text())["totals"]
    moved = psums = 0
    for line in (folder / "LAYER_STATS.jsonl").read_text().splitlines():
        stats = json.loads(line)["stats"]
        moved += stats["dram.read_bytes"] + stats["dram.write_bytes"]
        psums += stats["dram.tensor_read_bytes"].get("psum", 0) + stats["dram.tensor_write_bytes"].get("psum", 0)
    return summary["total_cycles"], summary["stall_cycles"], moved, psums


def choosing_seconds(topology: str, mapper: str) -> float:
    """Seconds the mapper takes to choose every layer's mapping, from cold caches, in this process."""
    from desim.components.compute import mappers
    from desim.components.compute.ifmap_footprint import _counted
    from desim.io.arch_yaml import read_arch_yaml
    from desim.io.topology import read_topology
    from desim.simulation import Simulation

    mappers._CHOSEN.clear()
    _counted.cache_clear()
    system = read_arch_yaml(CONFIG).with_param("array", "mapper", mapper)
    layers = read_topology(ROOT / topology, "conv")
    started = time.process_time()
    Simulation(system).check(layers)  # every layer shape's mapping is chosen here
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (the median is reported)")
    options = parser.parse_args()

    print(f"desim run -a configs/scale_dram10.yaml --mapper M, median of {options.repeat} runs\n")
    header = (
        f"{'workload':<9} {'mapper':<14} {'CPU s':>6} {'vs scalesim':>11} {'peak MB':>8} "
        f"{'total cycles':>13} {'stall cycles':>13} {'DRAM MB':>8} {'psum MB':>8}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as scratch:
        for name, topology in TOPOLOGIES.items():
            base = None
            for mapper in MAPPERS:
                outdir = Path(scratch) / f"{name}-{mapper}"
                args = ["run", "-q", "-a", str(CONFIG), "-t", topology, "--mapper", mapper, "-p", str(outdir)]
                cpu, peak = median_run(args, options.repeat)
                base = base or cpu
                total, stall, moved, psums = totals(outdir)
                print(
                    f"{name:<9} {mapper:<14} {cpu:>6.2f} {cpu / base:>10.2f}x {peak:>8.0f} "
                    f"{total:>13,} {stall:>13,} {moved / 1e6:>8.2f} {psums / 1e6:>8.2f}"
                )
    print()
    for name, topology in TOPOLOGIES.items():
        for mapper in MAPPERS[1:]:
            print(f"{name:<9} {mapper:<14} chooses every layer's mapping in {choosing_seconds(topology, mapper):.2f} s")


if __name__ == "__main__":
    main()
