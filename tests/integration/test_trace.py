"""Timeline traces: valid trace-event JSON, nested slices, a track per component, stalls that add up."""

import gzip
import itertools
import json
import os
from collections import defaultdict
from pathlib import Path

import pytest
from helpers import ROOT, system

from desim.errors import DesimError
from desim.simulation import Simulation
from desim.system import System
from desim.trace import Trace
from desim.workload import Layer

LAYERS = [
    Layer("conv_a", 14, 14, 3, 3, 8, 16, 1),
    Layer.gemm("gemm_b", 48, 24, 40),
    Layer("conv_c", 9, 9, 3, 3, 16, 8, 2),
]
METADATA = {"process_name", "process_sort_index", "thread_name", "thread_sort_index"}


def contended_system(clock_mhz: float = 1000.0) -> System:
    """Small buffers that stream, a slow link with latency, a shared bus, a DRAM with row misses
    (rows small enough that these small tensors span every bank)."""
    components = {
        "array": {"kind": "systolic_array", "rows": 8, "cols": 8, "dataflow": "ws"},
        "bus": {"kind": "bus", "bandwidth_bytes_per_cycle": 16},
        "dram": {
            "kind": "dram",
            "bandwidth_bytes_per_cycle": 4,
            "latency_cycles": 10,
            "row_miss_cycles": 3,
            "row_bytes": 128,
        },
    }
    links = [{"from": "bus.memory", "to": "dram.clients"}]
    for operand in ("ifmap", "filter", "ofmap"):
        components[f"sram_{operand}"] = {"kind": "scratchpad", "operand": operand, "capacity_bytes": 512}
        links.append({"from": f"array.{operand}", "to": f"sram_{operand}.compute"})
        link = {"from": f"sram_{operand}.memory", "to": "bus.clients"}
        if operand == "ifmap":
            link.update(bandwidth_bytes_per_cycle=8, latency_cycles=2)
        links.append(link)
    return System.build(components, links, name="contended", clock_mhz=clock_mhz)


def traced_run(sys_, workload, path, **options):
    with Trace(path, clock_mhz=sys_.clock_mhz, **options) as trace:
        results = list(Simulation(sys_).run(workload, trace=trace))
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as handle:
        return results, json.load(handle)


def ns(microseconds):
    """Trace times are whole nanoseconds written in microseconds."""
    return round(microseconds * 1000)


def check_format(data):
    """Every event carries the fields the trace-event format requires for its phase."""
    assert isinstance(data["traceEvents"], list) and data["traceEvents"]
    for event in data["traceEvents"]:
        assert isinstance(event["name"], str) and isinstance(event["pid"], int), event
        phase = event["ph"]
        if phase == "X":
            assert isinstance(event["tid"], int) and event["ts"] >= 0 and event["dur"] >= 0, event
        elif phase == "C":
            assert event["ts"] >= 0 and event["args"], event
            assert all(isinstance(value, int | float) for value in event["args"].values()), event
        else:
            assert phase == "M" and event["name"] in METADATA and event["args"], event


def check_nesting(data):
    """On each track, two slices are either apart or one holds the other."""
    tracks = defaultdict(list)
    for event in data["traceEvents"]:
        if event["ph"] == "X":
            tracks[event["pid"], event["tid"]].append((ns(event["ts"]), ns(event["ts"]) + ns(event["dur"])))
    for slices in tracks.values():
        open_ends = []
        for start, end in sorted(slices, key=lambda s: (s[0], -s[1])):
            while open_ends and open_ends[-1] <= start:
                open_ends.pop()
            assert not open_ends or end <= open_ends[-1], (start, end, open_ends[-1])
            open_ends.append(end)
    return tracks


def names(data, kind):
    return {e["pid"]: e["args"]["name"] for e in data["traceEvents"] if e["ph"] == "M" and e["name"] == kind}


def slices_of(data, pid, start_ns, end_ns):
    return [e for e in data["traceEvents"] if e["ph"] == "X" and e["pid"] == pid and start_ns <= ns(e["ts"]) < end_ns]


def counters_of(data, pid, name):
    return [
        (ns(e["ts"]), next(iter(e["args"].values())))
        for e in data["traceEvents"]
        if e["ph"] == "C" and e["pid"] == pid and e["name"] == name
    ]


def integral(steps, start, end):
    """The area under a step counter between two times (ns), in value x ns."""
    total = 0.0
    inside = [(t, v) for t, v in steps if start <= t <= end]
    for (t, value), (t_next, _) in itertools.pairwise(inside):
        total += value * (t_next - t)
    return total


@pytest.mark.parametrize("suffix", [".json.gz", ".json"])
def test_trace_structure_and_stalls_that_add_up(tmp_path, suffix):
    sys_ = contended_system()
    results, data = traced_run(sys_, LAYERS, tmp_path / f"run{suffix}")
    check_format(data)
    check_nesting(data)
    processes = {label.split(" (")[0]: pid for pid, label in names(data, "process_name").items()}
    # Every component has a track with something on it; so does the slow link, each way.
    for node in sys_.graph:
        assert any(e["pid"] == processes[node] for e in data["traceEvents"] if e["ph"] in "XC"), node
    assert "link sram_ifmap.memory->bus.clients" in names(data, "process_name").values()
    assert data["otherData"]["clock_mhz"] == 1000.0
    assert [layer["name"] for layer in data["otherData"]["layers"]] == [layer.name for layer in LAYERS]

    array, dram = processes["array"], processes["dram"]
    stalled_causes = set()
    for result, layer in zip(results, data["otherData"]["layers"], strict=True):
        stats = result.stats
        start, end = layer["start_cycle"], layer["end_cycle"]  # a cycle is a nanosecond at 1 GHz
        on_array = slices_of(data, array, start, end)
        (whole,) = [e for e in on_array if e["name"] == layer["name"]]
        assert ns(whole["dur"]) == stats["array.total_cycles"] + 1
        mapping = stats["array.chosen_mapping"]  # the layer's slice names its mapping
        fold = " x ".join(f"{dim} {size}" for dim, size in mapping["fold"].items())
        assert (whole["args"]["mapper"], whole["args"]["order"], whole["args"]["fold"]) == ("scalesim", "NKM", fold)
        stalls = [e for e in on_array if e["name"].startswith("stall: ")]
        assert sum(ns(e["dur"]) for e in stalls) == stats["array.stall_cycles"] > 0
        causes = defaultdict(int)
        ledger = stats["array.stall_cause_cycles"]
        for e in on_array:
            if e["name"] in ledger:
                causes[e["name"]] += ns(e["dur"])
        assert dict(causes) == {label: cycles for label, cycles in ledger.items() if cycles}
        stalled_causes |= set(causes)
        folds = [e for e in on_array if e["name"].startswith("fold ")]
        assert sum(ns(e["dur"]) for e in folds) == stats["array.compute_cycles"] + 1
        assert len({e["args"]["fold"] for e in folds}) == stats["array.folds"]
        # The DRAM's counters agree with its stats: bytes per cycle integrate to the bytes moved,
        # queue depth to the time transactions waited.
        moved = integral(counters_of(data, dram, "bandwidth"), start, end)
        assert moved == pytest.approx(stats["dram.read_bytes"] + stats["dram.write_bytes"], rel=1e-3)
        waited = integral(counters_of(data, dram, "queue"), start, end)
        assert abs(waited - stats["dram.queue_wait_cycles"]) <= 0.5 * stats["dram.transactions"]
        transactions = [e for e in slices_of(data, dram, start, end) if e["name"].split()[0] in ("read", "write")]
        assert len(transactions) == stats["dram.transactions"]
        assert {e["args"]["bytes"] for e in transactions} <= {sys_.params_of("dram")["transaction_bytes"], *range(4096)}
    assert {"dram queue", "dram service", "dram latency"} <= stalled_causes
    for pid in processes.values():
        assert all(0 <= value <= 100 for _, value in counters_of(data, pid, "utilisation"))
    tracks = {e["args"]["name"] for e in data["traceEvents"] if e["name"] == "thread_name"}
    assert {"folds", "requests", "requests 2", "transfers", "bank 0", "bank 7"} <= tracks


def test_trace_layers_keeps_only_the_chosen_layers(tmp_path):
    sys_ = contended_system()
    _, full = traced_run(sys_, LAYERS, tmp_path / "all.json")
    _, one = traced_run(sys_, LAYERS, tmp_path / "one.json", layers={1})
    check_format(one)
    check_nesting(one)
    (layer,) = one["otherData"]["layers"]
    assert layer["index"] == 1 and layer["name"] == "gemm_b"
    timed = [e for e in one["traceEvents"] if e["ph"] in "XC"]
    assert all(layer["start_cycle"] <= ns(e["ts"]) <= layer["end_cycle"] for e in timed)
    assert len(timed) < len([e for e in full["traceEvents"] if e["ph"] in "XC"])


def test_trace_time_follows_the_clock(tmp_path):
    results, data = traced_run(contended_system(clock_mhz=500), LAYERS[:1], tmp_path / "slow.json")
    (whole,) = [e for e in data["traceEvents"] if e["ph"] == "X" and e["name"] == "conv_a"]
    assert whole["dur"] == pytest.approx((results[0].stats["array.total_cycles"] + 1) / 500)


def test_ideal_memory_still_draws_every_component(tmp_path):
    sys_ = system(rows=8, cols=8)
    results, data = traced_run(sys_, LAYERS[:1], tmp_path / "ideal.json")
    check_format(data)
    check_nesting(data)
    busy = {e["pid"] for e in data["traceEvents"] if e["ph"] == "X"}
    assert len(busy) == len(sys_.graph)  # arrays, buffers, bus and DRAM all have slices
    assert not [e for e in data["traceEvents"] if e["ph"] == "X" and e["name"].startswith("stall")]
    transactions = [e for e in data["traceEvents"] if e["ph"] == "X" and e["name"].startswith(("read", "write"))]
    assert transactions and all(e["dur"] == 0 for e in transactions)  # ideal memory takes no time
    assert results[0].stats["array.stall_cycles"] == 0


def test_a_run_stopped_early_keeps_a_valid_trace_of_its_finished_layers(tmp_path):
    with pytest.raises(KeyboardInterrupt), Trace(tmp_path / "t.json") as trace:
        for _ in Simulation(system()).run(LAYERS, trace=trace):
            raise KeyboardInterrupt  # Ctrl-C once the first layer is done
    data = json.loads((tmp_path / "t.json").read_text())
    check_format(data)
    assert [layer["name"] for layer in data["otherData"]["layers"]] == ["conv_a"]
    assert [path.name for path in tmp_path.iterdir()] == ["t.json"]  # no temporary file left


def test_a_discarded_trace_leaves_the_earlier_file_as_it_was(tmp_path):
    earlier = tmp_path / "t.json"
    earlier.write_text("the earlier trace")
    trace = Trace(earlier)
    for _ in Simulation(system()).run(LAYERS[:1], trace=trace):
        pass
    trace.discard()
    assert earlier.read_text() == "the earlier trace"
    assert [path.name for path in tmp_path.iterdir()] == ["t.json"]


def test_a_trace_never_replaces_a_symlink(tmp_path):
    (tmp_path / "real.json").write_text("kept")
    (tmp_path / "t.json").symlink_to(tmp_path / "real.json")
    with pytest.raises(DesimError, match="refusing to replace a symbolic link with the trace"):
        Trace(tmp_path / "t.json")
    assert (tmp_path / "t.json").is_symlink() and (tmp_path / "real.json").read_text() == "kept"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["real.json", "t.json"]


def test_a_trace_never_replaces_a_directory_or_a_device(tmp_path):
    (tmp_path / "t.json").mkdir()
    with pytest.raises(DesimError, match="refusing to replace a directory with the trace"):
        Trace(tmp_path / "t.json")
    with pytest.raises(DesimError, match="refusing to replace a device with the trace"):
        Trace(os.devnull)
    assert Path(os.devnull).is_char_device()
    assert [path.name for path in tmp_path.iterdir()] == ["t.json"]


def test_tracing_does_not_change_the_results(tmp_path):
    sys_ = contended_system()
    plain = [result.stats for result in Simulation(sys_).run(LAYERS)]
    traced, _ = traced_run(sys_, LAYERS, tmp_path / "t.json")
    assert plain == [result.stats for result in traced]


def test_the_same_run_writes_the_same_bytes(tmp_path):
    sys_ = contended_system()
    for suffix in (".json.gz", ".json"):
        first, second = tmp_path / f"a{suffix}", tmp_path / "later" / f"b{suffix}"
        traced_run(sys_, LAYERS, first)
        traced_run(sys_, LAYERS, second)
        assert first.read_bytes() == second.read_bytes()


def test_an_unwritable_trace_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(Exception, match="cannot write the trace"):
        Trace(tmp_path / "file" / "t.json")


def test_shipped_config_traces_from_the_command_line(tmp_path):
    from click.testing import CliRunner

    from desim.cli import main

    path = tmp_path / "alexnet.json.gz"
    args = ["run", "-q", "-c", str(ROOT / "configs/scale.cfg"), "-p", str(tmp_path), "--trace", str(path)]
    result = CliRunner().invoke(main, [*args, "--trace-layers", "Conv2,4"])
    assert result.exit_code == 0, result.output
    with gzip.open(path, "rt") as handle:
        data = json.load(handle)
    assert [layer["index"] for layer in data["otherData"]["layers"]] == [1, 4]
    summary = json.loads((tmp_path / "scale_example_run_32x32_ws" / "SUMMARY.json").read_text())
    assert summary["trace"] == str(path.resolve())
    for bad, message in (("9", "'9' names no layer"), ("2-1", "'2-1' names no layer")):
        result = CliRunner().invoke(main, [*args, "--trace-layers", bad])
        assert result.exit_code == 2 and message in result.output
    result = CliRunner().invoke(main, ["run", "-q", "-p", str(tmp_path), "--trace-layers", "1"])
    assert result.exit_code == 2 and "--trace-layers chooses what --trace or --plot records" in result.output
