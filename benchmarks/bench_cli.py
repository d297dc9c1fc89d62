"""Speed and memory of ``desim run`` on AlexNet and ResNet-50 (32x32 ws), ideal and finite bandwidth.

Runs the real command line in a child process several times and prints, per case, the median CPU
seconds (user + system) and the median peak resident memory of the child, the run's stall share
(from its SUMMARY.json), next to the targets and to what SCALE-Sim 2.0.2 needed for the same work
on this kind of machine. The finite-bandwidth cases (``configs/scale.cfg`` in USER mode: DRAM at
10 bytes/cycle) must stall, so that the timing covers the memory system at work; the script says
so and exits with status 1 if one does not.

Then it times AlexNet at 10 bytes/cycle again with ``--trace`` (a gzipped timeline of every
layer) and prints the CPU seconds against the untraced run, the trace's size and its event count.
Last, it times start-up: ``desim --help`` and ``desim --version``, whose target is 0.3 s of CPU.

    python benchmarks/bench_cli.py            # 3 runs per case
    python benchmarks/bench_cli.py --repeat 5
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESIM = shutil.which("desim") or str(Path(sys.executable).parent / "desim")
"""The installed command, as a user runs it (``python -m desim`` would time a different start-up)."""
REFERENCE = ROOT / "tests" / "data" / "scalesim-2.0.2"

# SCALE-Sim 2.0.2 on ResNet-50, 32x32 ws: still running after 770 s CPU and 10 GB at layer 48 of 54
# (the reference set's README); it has no cost file because it never finished.
SCALESIM_RESNET50_FLOOR = (770.0, 10 * 1024)

TARGETS = {"alexnet": 2.0, "resnet50": 10.0}
MEMORY_TARGET_MB = 300
STARTUP_TARGET = 0.3


def scalesim_cost(case: str) -> tuple[float, float]:
    """CPU seconds and peak MB SCALE-Sim needed, from the reference cost file."""
    fields = dict(
        line.split(":", 1) for line in (REFERENCE / case / "scalesim_cost.txt").read_text().splitlines() if ":" in line
    )
    return float(fields["User time (seconds)"]), float(fields["Maximum resident set size (kbytes)"]) / 1024


def measure(args: list[str]) -> tuple[float, float]:
    """CPU seconds and peak MB of one child process running ``desim`` with ``args``."""
    process = subprocess.Popen([DESIM, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"desim {' '.join(args)} failed:\n{process.stderr.read().decode()}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def median_run(args: list[str], repeat: int) -> tuple[float, float]:
    """Median CPU seconds and median peak MB over ``repeat`` runs of ``desim`` with ``args``."""
    runs = [measure(args) for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def stall_share(outdir: Path) -> float:
    """Stall cycles over total cycles, in percent, from the one SUMMARY.json under ``outdir``."""
    (summary,) = outdir.glob("*/SUMMARY.json")
    totals = json.loads(summary.read_text())["totals"]
    return 100 * totals["stall_cycles"] / totals["total_cycles"] if totals["total_cycles"] else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (the median is reported)")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        ideal = ROOT / "configs" / "scale.cfg"
        user = Path(scratch) / "scale_user10.cfg"
        user.write_text(ideal.read_text().replace("CALC", "USER"))  # its Bandwidth: 10 words = 10 bytes/cycle
        configs = {"ideal (CALC)": ideal, "10 B/cycle (USER)": user}
        topologies = {"alexnet": "topologies/conv/alexnet.csv", "resnet50": "topologies/conv/resnet50.csv"}

        print(f"desim run, 32x32 ws, median of {options.repeat} runs; SCALE-Sim 2.0.2 for comparison\n")
        header = (
            f"{'workload':<10} {'memory':<18} {'CPU s':>7} {'peak MB':>8} {'stall':>7}   "
            f"{'target':<22} {'SCALE-Sim':>22}"
        )
        print(header)
        print("-" * len(header))
        unstalled = []
        untraced: dict[str, float] = {}
        for name, topology in topologies.items():
            if name == "alexnet":
                their_cpu, their_mb = scalesim_cost("alexnet_scale32ws")
                theirs = f"{their_cpu:.0f} s, {their_mb:.0f} MB"
            else:
                their_cpu, their_mb = SCALESIM_RESNET50_FLOOR
                theirs = f">{their_cpu:.0f} s, >{their_mb:.0f} MB"
            for memory, config in configs.items():
                outdir = Path(scratch) / "out" / f"{name}-{config.stem}"
                cpu, peak = median_run(
                    ["run", "-q", "-c", str(config), "-t", topology, "-p", str(outdir)], options.repeat
                )
                untraced[f"{name} {config.stem}"] = cpu
                stalls = stall_share(outdir)
                if config != ideal and stalls == 0:
                    unstalled.append(f"{name} at {memory}")
                ok = cpu < TARGETS[name] and peak < MEMORY_TARGET_MB
                target = f"<{TARGETS[name]:g} s, <{MEMORY_TARGET_MB} MB: {'met' if ok else 'MISSED'}"
                speedup = f"({their_cpu / cpu:,.0f}x faster)"
                print(
                    f"{name:<10} {memory:<18} {cpu:>7.2f} {peak:>8.0f} {stalls:>6.1f}%   "
                    f"{target:<22} {theirs:>22} {speedup}"
                )
        if unstalled:
            raise SystemExit(f"no stalls in the finite-bandwidth case(s): {', '.join(unstalled)}")

        trace = Path(scratch) / "alexnet.json.gz"
        args = ["run", "-q", "-c", str(user), "-t", topologies["alexnet"], "-p", str(Path(scratch) / "traced")]
        cpu, peak = median_run([*args, "--trace", str(trace)], options.repeat)
        with gzip.open(trace, "rt", encoding="utf-8") as handle:
            events = len(json.load(handle)["traceEvents"])
        plain = untraced[f"alexnet {user.stem}"]
        print(
            f"\nalexnet, 10 B/cycle, --trace (all 5 layers): {cpu:.2f} s CPU ({cpu / plain:.2f}x the untraced "
            f"{plain:.2f} s), {peak:.0f} MB peak; trace {trace.stat().st_size / 1e6:.2f} MB gzipped, {events:,} events"
        )

    print()
    for args in (["--help"], ["--version"]):
        # CPU only: a child's peak memory counts the benchmark's own pages it was forked from, which
        # for a process this small is most of the figure.
        cpu = median_run(args, max(options.repeat, 5))[0]
        verdict = "met" if cpu < STARTUP_TARGET else "MISSED"
        print(f"desim {args[0]:<10} {cpu:.3f} s CPU (target <{STARTUP_TARGET:g} s: {verdict})")


if __name__ == "__main__":
    main()
