"""The command line: outputs, bad input (exit 2, one clear line, no traceback), killed runs."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from helpers import REFERENCE, ROOT, check_stall_report, read_report

from desim.cli import main
from desim.io.reports import BANDWIDTH_COLUMNS, COMPUTE_COLUMNS, DETAILED_COLUMNS

CONV_HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"


def desim(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "desim", *args], capture_output=True, text=True, cwd=cwd)


def test_default_run_writes_all_reports(tmp_path):
    result = desim("run", "-p", str(tmp_path))
    assert result.returncode == 0, result.stderr
    outdir = tmp_path / "scale_example_run_32x32_ws"
    assert sorted(p.name for p in outdir.iterdir()) == [
        "BANDWIDTH_REPORT.csv",
        "COMPUTE_REPORT.csv",
        "DETAILED_ACCESS_REPORT.csv",
        "LAYER_STATS.jsonl",
        "STALL_REPORT.csv",
        "SUMMARY.json",
    ]
    assert len([line for line in result.stdout.splitlines() if line.startswith("layer ")]) == 5
    assert result.stderr == ""  # the shipped config holds no key desim ignores


def test_report_headers_are_scalesims_exactly(tmp_path):
    assert desim("run", "-q", "-p", str(tmp_path)).returncode == 0
    outdir = tmp_path / "scale_example_run_32x32_ws"
    for name, columns in (
        ("COMPUTE_REPORT.csv", COMPUTE_COLUMNS),
        ("BANDWIDTH_REPORT.csv", BANDWIDTH_COLUMNS),
        ("DETAILED_ACCESS_REPORT.csv", DETAILED_COLUMNS),
    ):
        ours = (outdir / name).read_text().splitlines()[0]
        theirs = (REFERENCE / "alexnet_scale32ws" / name).read_text().splitlines()[0]
        assert ours == theirs == ", ".join(columns) + ","


def test_stall_report_and_summary_agree(tmp_path):
    topo = REFERENCE / "alexnet_scale32ws" / "topology.csv"
    result = desim("run", "-q", "-c", str(ROOT / "configs" / "google.cfg"), "-t", str(topo), "-p", str(tmp_path))
    assert result.returncode == 0, result.stderr
    outdir = tmp_path / "GoogleTPU_v1_os"
    rows = read_report(outdir / "STALL_REPORT.csv")
    summary = json.loads((outdir / "SUMMARY.json").read_text())
    check_stall_report(outdir / "STALL_REPORT.csv")  # by operand and by cause, each sums to the stalls
    assert all(int(row["Stall Cycles"]) > 0 for row in rows)
    assert {"dram queue", "dram service", "sram_ifmap capacity"} <= set(rows[0])
    totals = summary["totals"]
    assert totals["stall_cycles"] == sum(int(row["Stall Cycles"]) for row in rows)
    assert totals["stall_cycles"] == sum(totals["stalls"].values()) == sum(totals["stall_causes"].values())
    dram = totals["memory"]["dram"]
    assert 0 < dram["busy_percent"] <= 100 and dram["max_queue_depth"] >= dram["avg_queue_depth"] > 0
    assert dram["avg_latency_cycles"] > 0
    assert summary["stat_units"]["array.stall_ifmap_cycles"] == "cycles"
    assert summary["stat_units"]["dram.read_bytes"] == "bytes"
    lines = [json.loads(line) for line in (outdir / "LAYER_STATS.jsonl").read_text().splitlines()]
    assert [line["id"] for line in lines] == list(range(len(rows)))
    for line, row in zip(lines, rows, strict=True):
        assert line["stats"]["array.stall_cycles"] == int(row["Stall Cycles"])
        assert set(line["stats"]) == set(summary["stat_units"])


def test_yaml_run_equals_cfg_run(tmp_path):
    cfg, yaml = tmp_path / "cfg", tmp_path / "yaml"
    assert desim("run", "-q", "-c", "configs/scale.cfg", "-p", str(cfg)).returncode == 0
    assert desim("run", "-q", "-a", "configs/scale.yaml", "-p", str(yaml)).returncode == 0
    for name in ("COMPUTE_REPORT.csv", "BANDWIDTH_REPORT.csv", "DETAILED_ACCESS_REPORT.csv", "STALL_REPORT.csv"):
        assert (cfg / "scale_example_run_32x32_ws" / name).read_bytes() == (
            yaml / "scale_example_run_32x32_ws" / name
        ).read_bytes()


def test_same_inputs_same_bytes(tmp_path):
    for run in ("a", "b"):
        args = ("run", "-q", "-c", "configs/google.cfg", "-t", "topologies/conv/test.csv", "-p", str(tmp_path / run))
        assert desim(*args).returncode == 0
    for path in (tmp_path / "a" / "GoogleTPU_v1_os").iterdir():
        assert path.read_bytes() == (tmp_path / "b" / "GoogleTPU_v1_os" / path.name).read_bytes()


def test_components_lists_every_kind_with_its_declarations():
    result = CliRunner().invoke(main, ["components"])
    assert result.exit_code == 0
    for kind in ("systolic_array", "scratchpad", "dram", "bus"):
        assert f"\n{kind}  (" in "\n" + result.output
    assert "capacity_bytes (int bytes, default 65536): SRAM capacity" in result.output
    assert "stall_ifmap_cycles (cycles)" in result.output


# -- bad input: each gives one line naming the file and line or key, exit status 2, no traceback --


def write(path, text):
    path.write_text(text)
    return str(path)


def bad_cases(tmp_path):
    cfg = (ROOT / "configs" / "scale.cfg").read_text()
    yaml = (ROOT / "configs" / "scale.yaml").read_text()
    topo = write(tmp_path / "ok.csv", CONV_HEADER + "C1, 8, 8, 3, 3, 2, 4, 1,\n")
    return {
        "missing config": (["-c", str(tmp_path / "no.cfg")], "no.cfg: config file not found"),
        "missing topology": (["-t", str(tmp_path / "no.csv")], "no.csv: topology file not found"),
        "unreadable config": (["-c", str(tmp_path)], "expected a config file, found a directory"),
        "missing section": (
            [
                "-c",
                write(
                    tmp_path / "a.cfg",
                    cfg.replace("[run_presets]\nInterfaceBandwidth: CALC\n", "").replace(
                        "[architecture_presets]", "[arch]"
                    ),
                ),
                "-t",
                topo,
            ],
            "a.cfg: missing section [architecture_presets]",
        ),
        "missing key": (
            ["-c", write(tmp_path / "b.cfg", cfg.replace("ArrayWidth:     32\n", "")), "-t", topo],
            "b.cfg: ArrayWidth: missing key in [architecture_presets]",
        ),
        "unknown dataflow": (
            ["-c", write(tmp_path / "c.cfg", cfg.replace("Dataflow : ws", "Dataflow : rs")), "-t", topo],
            "c.cfg:11: Dataflow: unknown dataflow 'rs'; expected os, ws or is",
        ),
        "non-integer field": (
            ["-t", write(tmp_path / "d.csv", CONV_HEADER + "C1, 8, 8, 3, x, 2, 4, 1,\n")],
            "d.csv:2: field 'Filter Width' must be a positive integer, got 'x'",
        ),
        "empty field": (
            ["-t", write(tmp_path / "e.csv", CONV_HEADER + "C1, 8, 8, 3, 3, , 4, 1,\n")],
            "e.csv:2: field 'Channels' is empty; expected a positive integer",
        ),
        "zero dimension": (
            ["-t", write(tmp_path / "f.csv", CONV_HEADER + "C1, 8, 0, 3, 3, 2, 4, 1,\n")],
            "f.csv:2: field 'IFMAP Width' must be a positive integer, got 0",
        ),
        "negative dimension": (
            ["-t", write(tmp_path / "g.csv", CONV_HEADER + "C1, 8, 8, 3, 3, 2, -4, 1,\n")],
            "g.csv:2: field 'Num Filter' must be a positive integer, got -4",
        ),
        "filter larger than input": (
            ["-t", write(tmp_path / "h.csv", CONV_HEADER + "C1, 8, 8, 3, 3, 2, 4, 1,\nC2, 8, 8, 3, 11, 2, 4, 1,\n")],
            "h.csv:3: filter width 11 is larger than the ifmap width 8",
        ),
        "unknown yaml key": (
            [
                "-a",
                write(tmp_path / "i.yaml", yaml.replace("word_bytes: 1", "word_bytes: 1\nclock_ghz: 1")),
                "-t",
                topo,
            ],
            "i.yaml:7: clock_ghz: unknown key",
        ),
        "unknown yaml kind": (
            ["-a", write(tmp_path / "j.yaml", yaml.replace("kind: bus,", "kind: crossbar,")), "-t", topo],
            "j.yaml:13: bus.kind: unknown kind 'crossbar'",
        ),
        "link to a missing node": (
            ["-a", write(tmp_path / "k.yaml", yaml.replace("to: dram.clients", "to: hbm.clients")), "-t", topo],
            "k.yaml:23: links[6].to: names node 'hbm', which is not a component",
        ),
        "gemm row in conv form": (
            ["-t", write(tmp_path / "l.csv", "Layer, M, N, K,\nL0, 4, 4, 4,\n")],
            "l.csv:2: expected 8 fields",
        ),
        "conv file read as gemm": (["-t", topo, "-i", "gemm"], "ok.csv:1: this header names conv columns"),
        "run name that is a path": (
            [
                "-c",
                write(tmp_path / "m.cfg", cfg.replace("run_name = scale_example_run_32x32_ws", "run_name = ../up")),
                "-t",
                topo,
            ],
            "m.cfg:2: run_name: '../up' must be a single folder name",
        ),
        "duplicate yaml key": (
            [
                "-a",
                write(tmp_path / "n.yaml", yaml.replace("word_bytes: 1", "word_bytes: 1\nword_bytes: 2")),
                "-t",
                topo,
            ],
            "n.yaml:7: word_bytes: this key appears twice",
        ),
        "layer too large": (
            ["-t", write(tmp_path / "o.csv", CONV_HEADER + "Big, 100000, 100000, 3, 3, 64, 64, 1,\n")],
            "o.csv:2: the IFMAP has 640,000,000,000 elements",
        ),
        "too many folds": (
            [
                "-c",
                write(
                    tmp_path / "p.cfg",
                    cfg.replace("Height:    32", "Height:    1").replace("Width:     32", "Width:     1"),
                ),
                "-t",
                write(tmp_path / "p.csv", "Layer, M, N, K,\nL0, 1, 2100, 2100,\n"),
                "-i",
                "gemm",
            ],
            "p.csv: layer 0 (L0) on array: needs 4,410,000 folds on the 1x1 array",
        ),
        "both -c and -a": (["-c", "configs/scale.cfg", "-a", "configs/scale.yaml"], "not both"),
    }


CASE_NAMES = [
    "missing config",
    "missing topology",
    "unreadable config",
    "missing section",
    "missing key",
    "unknown dataflow",
    "non-integer field",
    "empty field",
    "zero dimension",
    "negative dimension",
    "filter larger than input",
    "unknown yaml key",
    "unknown yaml kind",
    "link to a missing node",
    "gemm row in conv form",
    "conv file read as gemm",
    "run name that is a path",
    "duplicate yaml key",
    "layer too large",
    "too many folds",
    "both -c and -a",
]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_input(case, tmp_path):
    args, expected = bad_cases(tmp_path)[case]
    result = desim("run", "-q", "-p", str(tmp_path / "out"), *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("desim: error: ") and expected in lines[0], lines
    assert not (tmp_path / "out").exists()  # nothing half-written: inputs are checked before any report


def test_buffers_too_small_for_a_layer_stop_the_run_with_its_finished_layers_kept(tmp_path):
    topo = write(tmp_path / "two.csv", "Layer, M, N, K,\nSmall, 8, 8, 8,\nHuge, 40000, 40000, 40000,\n")
    result = desim("run", "-q", "-t", topo, "-i", "gemm", "-p", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "layer 'Huge' would stream in 62,500,000 steps" in result.stderr
    rows = read_report(tmp_path / "out" / "scale_example_run_32x32_ws" / "COMPUTE_REPORT.csv")
    assert [row["LayerID"] for row in rows] == ["0"]


def test_a_rerun_drops_the_previous_summary_before_replacing_the_reports(tmp_path):
    assert desim("run", "-q", "-t", "topologies/conv/test.csv", "-p", str(tmp_path)).returncode == 0
    summary = tmp_path / "scale_example_run_32x32_ws" / "SUMMARY.json"
    assert summary.exists()
    topo = write(tmp_path / "huge.csv", "Layer, M, N, K,\nHuge, 40000, 40000, 40000,\n")
    assert desim("run", "-q", "-t", topo, "-i", "gemm", "-p", str(tmp_path)).returncode == 2
    assert not summary.exists()  # no summary of the old run next to this run's (empty) reports


def test_a_killed_run_keeps_every_finished_layer(tmp_path):
    """SIGKILL mid-run: the CSVs hold whole rows for each layer that finished, nothing torn."""
    process = subprocess.Popen(
        [sys.executable, "-m", "desim", "run", "-q", "-t", "topologies/conv/mobilenet_v1.csv", "-p", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    report = tmp_path / "scale_example_run_32x32_ws" / "STALL_REPORT.csv"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not report.exists() or report.read_text().count("\n") < 20):
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL  # it was still running: the test saw a real kill
    outdir = report.parent
    counts = set()
    for name in ("COMPUTE_REPORT.csv", "BANDWIDTH_REPORT.csv", "DETAILED_ACCESS_REPORT.csv", "STALL_REPORT.csv"):
        text = (outdir / name).read_text()
        assert text.endswith(",\n")
        rows = text.splitlines()[1:]
        assert [int(row.split(",")[0]) for row in rows] == list(range(len(rows)))
        counts.add(len(rows))
    stats = [json.loads(line) for line in (outdir / "LAYER_STATS.jsonl").read_text().splitlines()]
    assert [line["id"] for line in stats] == list(range(len(stats)))
    counts.add(len(stats))
    assert min(counts) >= 19 and max(counts) - min(counts) <= 1  # at most the layer being written differs
    assert not (outdir / "SUMMARY.json").exists()
