"""The command line: outputs, bad input (exit 2, one clear line, nothing touched), crashes, interrupts.

Commands run in this process through click's CliRunner; the few that need a real process (a kill,
Ctrl-C, two runs at once, start-up) run ``python -m desim`` in a child.
"""

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import REFERENCE, ROOT, check_stall_report, read_report

from desim import limits
from desim.cli import main
from desim.io import reports
from desim.io.reports import ARRAY_REPORTS, BANDWIDTH_COLUMNS, COMPUTE_COLUMNS, DETAILED_COLUMNS
from desim.registry import default_registry

CONV_HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
RUN = "scale_example_run_32x32_ws"  # configs/scale.cfg's run name
TEST_CSV = str(ROOT / "topologies" / "conv" / "test.csv")


@pytest.fixture(autouse=True)
def in_checkout(monkeypatch):
    """Relative paths (configs/..., topologies/...) name the checkout's files, as in the README."""
    monkeypatch.chdir(ROOT)


def desim(*args):
    """``desim ARGS`` in this process: the result has ``exit_code``, ``stdout`` and ``stderr``."""
    return CliRunner().invoke(main, list(args))


def child(*args, **options):
    return subprocess.Popen([sys.executable, "-m", "desim", *args], cwd=ROOT, **options)


def write(path, text):
    path.write_text(text)
    return str(path)


def snapshot(folder):
    """Every file under ``folder`` (hidden ones too) with its bytes; symlinks as their target."""
    found = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        found[key] = f"-> {os.readlink(path)}" if path.is_symlink() else path.read_bytes() if path.is_file() else "/"
    return found


def earlier_reports(outdir):
    """A report folder as an earlier run left it (stand-in files), to check nothing touches it."""
    folder = outdir / RUN
    folder.mkdir(parents=True)
    for name in reports.REPORT_FILES:
        (folder / name).write_text(f"earlier {name}\n")
    return snapshot(outdir)


# -- what a run writes ------------------------------------------------------------------------------


def test_the_main_job_runs_as_a_command(tmp_path):
    """The one check through a real process: `python -m desim run`, as the README's quick start."""
    result = subprocess.run([sys.executable, "-m", "desim", "run", "-p", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / RUN).iterdir()) == sorted(reports.REPORT_FILES)
    assert [p.name for p in tmp_path.iterdir()] == [RUN]  # no lock file or staging folder left behind
    assert len([line for line in result.stdout.splitlines() if line.startswith("layer ")]) == 5
    assert result.stderr == ""  # the shipped config holds no key desim ignores


def test_report_headers_are_scalesims_exactly(tmp_path):
    assert desim("run", "-q", "-p", str(tmp_path)).exit_code == 0
    for name, columns in (
        ("COMPUTE_REPORT.csv", COMPUTE_COLUMNS),
        ("BANDWIDTH_REPORT.csv", BANDWIDTH_COLUMNS),
        ("DETAILED_ACCESS_REPORT.csv", DETAILED_COLUMNS),
    ):
        ours = (tmp_path / RUN / name).read_text().splitlines()[0]
        theirs = (REFERENCE / "alexnet_scale32ws" / name).read_text().splitlines()[0]
        assert ours == theirs == ", ".join(columns) + ","


def test_report_files_are_as_readable_as_any_new_file(tmp_path):
    assert desim("run", "-q", "-t", TEST_CSV, "-p", str(tmp_path)).exit_code == 0
    umask = os.umask(0o022)
    os.umask(umask)
    modes = {path.name: path.stat().st_mode & 0o777 for path in (tmp_path / RUN).iterdir()}
    assert modes == dict.fromkeys(reports.REPORT_FILES, 0o666 & ~umask)


def test_stall_report_and_summary_agree(tmp_path):
    topo = REFERENCE / "alexnet_scale32ws" / "topology.csv"
    result = desim("run", "-q", "-c", "configs/google.cfg", "-t", str(topo), "-p", str(tmp_path))
    assert result.exit_code == 0, result.output
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
    assert desim("run", "-q", "-c", "configs/scale.cfg", "-p", str(cfg)).exit_code == 0
    assert desim("run", "-q", "-a", "configs/scale.yaml", "-p", str(yaml)).exit_code == 0
    for name in ("COMPUTE_REPORT.csv", "BANDWIDTH_REPORT.csv", "DETAILED_ACCESS_REPORT.csv", "STALL_REPORT.csv"):
        assert (cfg / RUN / name).read_bytes() == (yaml / RUN / name).read_bytes()


def test_same_inputs_same_bytes(tmp_path):
    for run in ("a", "b"):
        args = ("run", "-q", "-c", "configs/google.cfg", "-t", "topologies/conv/test.csv", "-p", str(tmp_path / run))
        assert desim(*args).exit_code == 0
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")


def test_the_order_components_and_links_are_listed_in_changes_no_byte(tmp_path):
    """Once, reversing a YAML's components moved the buffers' addresses and changed cycles by 4.7%."""
    lines = (ROOT / "configs" / "scale_dram10.yaml").read_text().splitlines()
    start, middle = lines.index("components:"), lines.index("links:")
    head, links = lines[:start], lines[middle + 1 :]
    components = [line for line in lines[start + 1 : middle] if line.strip()]
    entries = [line for line in links if line.startswith("  - ")]
    assert len(components) == 6 and len(entries) == 7  # every entry is one line: reversing keeps them whole
    banked = [
        # Rows that do not divide the address ranges make a buffer's DRAM banks depend on its range.
        # With these, desim 0.1.0 gave 4776 and 4947 cycles for layer 1, forward and backward.
        line.replace("kind: dram,", "kind: dram, banks: 5, row_bytes: 1000, row_miss_cycles: 20,")
        for line in components
    ]
    forward = [*head, "components:", *banked, "links:", *entries]
    backward = [*head, "components:", *reversed(banked), "links:", *reversed(entries)]
    topo = write(tmp_path / "two.csv", CONV_HEADER + "A, 20, 20, 3, 3, 16, 32, 1,\nB, 12, 12, 3, 3, 32, 64, 1,\n")
    for name, text in (("forward", forward), ("backward", backward)):
        (tmp_path / name).mkdir()
        write(tmp_path / name / "arch.yaml", "\n".join(text) + "\n")
        result = desim("run", "-q", "-a", str(tmp_path / name / "arch.yaml"), "-t", topo, "-p", str(tmp_path / name))
        assert result.exit_code == 0, result.output
    one, other = snapshot(tmp_path / "forward"), snapshot(tmp_path / "backward")
    run = "scale_32x32_ws_dram10"
    summaries = [json.loads(files.pop(f"{run}/SUMMARY.json")) for files in (one, other)]
    for summary in summaries:
        summary.pop("inputs")  # names the architecture file, which differs
    assert summaries[0] == summaries[1] and json.dumps(summaries[0]) == json.dumps(summaries[1])
    del one["arch.yaml"], other["arch.yaml"]
    assert one == other
    assert int(read_report(tmp_path / "forward" / run / "STALL_REPORT.csv")[0]["Stall Cycles"]) > 0


def test_components_lists_every_kind_with_its_declarations():
    result = desim("components")
    assert result.exit_code == 0
    for kind in ("systolic_array", "scratchpad", "dram", "bus"):
        assert f"\n{kind}  (" in "\n" + result.output
    assert "capacity_bytes (int bytes, default 65536): SRAM capacity" in result.output
    assert "stall_ifmap_cycles (cycles)" in result.output


# -- valid inputs that once crashed ----------------------------------------------------------------


def unlimited_dram_yaml(tmp_path, **dram):
    """The 4x4 array with 1 KiB scratchpads and a DRAM of unlimited bandwidth with ``dram`` params."""
    params = ", ".join(f"{key}: {value}" for key, value in dram.items())
    ops = ("ifmap", "filter", "ofmap")
    text = "\n".join(
        [
            "name: unlimited",
            "components:",
            "  array: {kind: systolic_array, rows: 4, cols: 4, dataflow: ws}",
            *(f"  sram_{op}: {{kind: scratchpad, operand: {op}, capacity_bytes: 1024}}" for op in ops),
            "  bus: {kind: bus}",
            f"  dram: {{kind: dram, {params}}}",
            "links:",
            *(f"  - [array.{op}, sram_{op}.compute]" for op in ops),
            *(f"  - [sram_{op}.memory, bus.clients]" for op in ops),
            "  - [bus.memory, dram.clients]",
        ]
    )
    return write(tmp_path / "unlimited.yaml", text + "\n")


def test_unlimited_bandwidth_with_latency_and_row_misses_runs(tmp_path):
    arch = unlimited_dram_yaml(tmp_path, latency_cycles=10, row_miss_cycles=5)
    gemm = write(tmp_path / "g.csv", "Layer, M, N, K,\ng, 4, 4, 4,\n")
    result = desim("run", "-q", "-a", arch, "-t", gemm, "-i", "gemm", "-p", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    (row,) = read_report(tmp_path / "out" / "unlimited" / "STALL_REPORT.csv")
    # Worked out in tests/components/test_memory_timing.py: 48 cycles, 35 of them stalled.
    assert (row["Total Cycles"], row["Stall Cycles"], row["dram service"], row["dram latency"]) == (
        "48",
        "35",
        "10",
        "25",
    )
    swept = desim("sweep", "-a", arch, "-t", gemm, "-i", "gemm", "--vary", "dram.latency_cycles=0,10")
    assert swept.exit_code == 0, swept.output
    assert [line.split()[:2] for line in swept.stdout.splitlines()[1:]] == [["0", "28"], ["10", "48"]]


def test_a_scalesim_config_with_a_byte_order_mark_is_read(tmp_path):
    config = tmp_path / "bom.cfg"
    config.write_bytes(b"\xef\xbb\xbf" + (ROOT / "configs" / "scale.cfg").read_bytes())
    assert desim("run", "-q", "-c", str(config), "-t", TEST_CSV, "-p", str(tmp_path)).exit_code == 0


# -- bad input: one line naming the file and line or key, exit 2, nothing touched ------------------


def bad_cases(tmp_path):
    """Each case's arguments and the error line's telling part; with ``tmp_path`` None, just the names."""

    real = tmp_path is not None

    def write(path, text):
        if real:
            path.write_text(text)
        return str(path)

    tmp_path = tmp_path if real else Path("unused")
    cfg = (ROOT / "configs" / "scale.cfg").read_text()
    yaml = (ROOT / "configs" / "scale.yaml").read_text()
    dram10 = (ROOT / "configs" / "scale_dram10.yaml").read_text()
    topo = write(tmp_path / "ok.csv", CONV_HEADER + "C1, 8, 8, 3, 3, 2, 4, 1,\n")
    user_cfg = cfg.replace("InterfaceBandwidth: CALC", "InterfaceBandwidth: USER")
    digits = "9" * 400
    slow_link = "{from: sram_ifmap.memory, to: bus.clients}"
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    return {
        "missing config": (["-c", str(tmp_path / "no.cfg")], "no.cfg: config file not found"),
        "missing topology": (["-t", str(tmp_path / "no.csv")], "no.csv: topology file not found"),
        "unreadable config": (["-c", str(tmp_path)], "this is a directory, not a config file"),
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
            ["-a", write(tmp_path / "j.yaml", yaml.replace("kind: bus,", "kind: ring_bus,")), "-t", topo],
            "j.yaml:13: bus.kind: unknown kind 'ring_bus'",
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
            ["-c", write(tmp_path / "m.cfg", cfg.replace(f"run_name = {RUN}", "run_name = ../up")), "-t", topo],
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
        "too many folds, with its line": (
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
            "p.csv:2: layer 0 (L0) on array: needs 4,410,000 folds on the 1x1 array",
        ),
        "too many steps, before the first layer runs": (
            [
                "-t",
                write(tmp_path / "q.csv", "Layer, M, N, K,\nSmall, 8, 8, 8,\nHuge, 40000, 40000, 40000,\n"),
                "-i",
                "gemm",
            ],
            "q.csv:3: layer 1 (Huge) on array: would stream in 62,500,000 steps through buffers this small",
        ),
        "both -c and -a": (["-c", "configs/scale.cfg", "-a", "configs/scale.yaml"], "not both"),
        # The list of inputs that once crashed or misled.
        "user bandwidth too small": (
            ["-c", write(tmp_path / "r.cfg", user_cfg.replace("Bandwidth : 10", "Bandwidth : 1e-300")), "-t", topo],
            "r.cfg:10: Bandwidth: 1e-300 words/cycle x 1 bytes is 1e-300 bytes/cycle; expected from 0.001",
        ),
        "user bandwidth infinite once converted": (
            [
                "-c",
                write(
                    tmp_path / "s.cfg",
                    user_cfg.replace("Bandwidth : 10", "Bandwidth : 1e308\nWordBytes: 2"),
                ),
                "-t",
                topo,
            ],
            "s.cfg:10: Bandwidth: 1e+308 words/cycle x 2 bytes is inf bytes/cycle",
        ),
        "sram size that overflows": (
            ["-c", write(tmp_path / "t.cfg", cfg.replace("IfmapSramSzkB:   64", "IfmapSramSzkB:   1e306")), "-t", topo],
            "t.cfg:7: IfmapSramSzkB: expected a positive number up to 2^53, got '1e306'",
        ),
        "underscore in a cfg number": (
            ["-c", write(tmp_path / "u.cfg", cfg.replace("ArrayHeight:    32", "ArrayHeight:    1_0")), "-t", topo],
            "u.cfg:5: ArrayHeight: expected a positive integer up to 2^53, got '1_0'",
        ),
        "array too large for its kind": (
            ["-c", write(tmp_path / "v.cfg", cfg.replace("ArrayHeight:    32", "ArrayHeight:    100000")), "-t", topo],
            "v.cfg:5: ArrayHeight: expected an integer from 1 to 65536, got 100000",
        ),
        "400-digit float param": (
            [
                "-a",
                write(
                    tmp_path / "w.yaml",
                    dram10.replace("bandwidth_bytes_per_cycle: 10,", f"bandwidth_bytes_per_cycle: {digits},"),
                ),
                "-t",
                topo,
            ],
            "w.yaml:14: not valid YAML: this integer is too large",
        ),
        "400-digit link latency": (
            [
                "-a",
                write(tmp_path / "x.yaml", yaml.replace(slow_link, f"{slow_link[:-1]}, latency_cycles: {digits}}}")),
                "-t",
                topo,
            ],
            "x.yaml:20: not valid YAML: this integer is too large",
        ),
        "20-digit link latency": (
            [
                "-a",
                write(tmp_path / "x2.yaml", yaml.replace(slow_link, f"{slow_link[:-1]}, latency_cycles: {'9' * 20}}}")),
                "-t",
                topo,
            ],
            "x2.yaml:20: sram_ifmap.memory->bus.clients: latency_cycles: expected an integer from 0 to 2^32, got 999",
        ),
        "integer component name": (
            ["-a", write(tmp_path / "y.yaml", yaml.replace("  array:", "  7:")), "-t", topo],
            "y.yaml:9: 7: a component's name must be text, got 7",
        ),
        "self-referencing alias": (
            ["-a", write(tmp_path / "z.yaml", "x: &a [*a]\n"), "-t", topo],
            "z.yaml:1: not valid YAML: aliases (*a) are not supported; write the value out",
        ),
        "alias bomb": (["-a", write(tmp_path / "bomb.yaml", bomb), "-t", topo], "bomb.yaml:2: not valid YAML: aliases"),
        "100k nested brackets": (
            ["-a", write(tmp_path / "deep.yaml", "x: " + "[" * 100_000 + "]" * 100_000 + "\n"), "-t", topo],
            "deep.yaml:1: not valid YAML: nested more than 100 levels deep",
        ),
        "huge stride": (
            ["-t", write(tmp_path / "st.csv", CONV_HEADER + "C1, 8, 8, 3, 3, 2, 4, 10000000000000000000,\n")],
            "st.csv:2: field 'Strides' must be at most 2,147,483,648, got '10000000000000000000'",
        ),
        "ten million depthwise channels": (
            ["-t", write(tmp_path / "dw.csv", CONV_HEADER + "DP1, 8, 8, 3, 3, 10000000, 1, 1,\n")],
            "dw.csv:2: the workload would have 10,000,000 layers here (depthwise rows count one per channel)",
        ),
    }


@pytest.mark.parametrize("case", list(bad_cases(None)))
def test_bad_input(case, tmp_path):
    args, expected = bad_cases(tmp_path)[case]
    outdir = tmp_path / "out"
    before = earlier_reports(outdir)
    started = time.perf_counter()
    result = desim("run", "-q", "-p", str(outdir), *args)
    assert result.exit_code == 2, result.output
    assert time.perf_counter() - started < 60  # generous: a bomb used to run for minutes
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("desim: error: ") and expected in lines[0], lines
    assert snapshot(outdir) == before  # inputs are checked before any output is touched


def test_a_second_run_into_the_same_folder_fails_at_once(tmp_path):
    """The lock is an OS lock: held here as another run would hold it."""
    outdir = tmp_path / "out"
    earlier_reports(outdir)
    lock = os.open(outdir / f".{RUN}.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    before = snapshot(outdir)
    try:
        result = desim("run", "-q", "-t", TEST_CSV, "-p", str(outdir))
    finally:
        os.close(lock)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"desim: error: {outdir / RUN}: another desim run is writing these reports now; "
        "wait for it to finish or give another -p"
    )
    assert snapshot(outdir) == before  # the lock file was the other run's: it stays


def test_two_runs_into_one_folder_at_once_one_wins_and_the_reports_are_whole(tmp_path):
    args = (
        "run",
        "-q",
        "-a",
        "configs/scale_dram10.yaml",
        "-t",
        "topologies/conv/mobilenet_v1.csv",
        "-p",
        str(tmp_path),
    )
    runs = [child(*args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = sorted((run.wait(timeout=300), run.stderr.read()) for run in runs)
    assert [code for code, _ in outcomes] == [0, 2], outcomes
    assert "another desim run is writing these reports now" in outcomes[1][1]
    folder = tmp_path / "scale_32x32_ws_dram10"
    summary = json.loads((folder / "SUMMARY.json").read_text())
    for name in ("COMPUTE_REPORT.csv", "STALL_REPORT.csv"):
        ids = [int(row["LayerID"]) for row in read_report(folder / name)]
        assert ids == list(range(summary["layers"])) and summary["layers"] == 4975
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]


# -- outputs: only regular files are ever replaced ---------------------------------------------------


def trace_targets(tmp_path):
    (tmp_path / "real.json").write_text("kept")
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "file").write_text("kept")
    return {
        "symlink": (tmp_path / "link.json", "refusing to replace a symbolic link with the trace"),
        "device": (os.devnull, "refusing to replace a device with the trace"),
        "directory": (tmp_path / "folder.json", "refusing to replace a directory with the trace"),
        "under a file": (tmp_path / "file" / "t.json", f"cannot write the trace: {tmp_path / 'file'} is a file"),
    }


@pytest.mark.parametrize("target", ["symlink", "device", "directory", "under a file"])
def test_a_trace_onto_what_is_not_a_regular_file_is_refused_before_simulating(tmp_path, target):
    path, expected = trace_targets(tmp_path)[target]
    outdir = tmp_path / "out"
    before = earlier_reports(outdir)
    around = snapshot(tmp_path)
    result = desim("run", "-q", "-t", TEST_CSV, "-p", str(outdir), "--trace", str(path))
    assert result.exit_code == 2 and expected in result.stderr, result.output
    assert snapshot(outdir) == before and snapshot(tmp_path) == around
    assert os.path.exists(os.devnull) and not os.path.isfile(os.devnull)


def test_a_trace_never_replaces_a_report_of_the_run_or_an_input(tmp_path):
    topo = tmp_path / "my.csv"
    topo.write_text((ROOT / "topologies" / "conv" / "test.csv").read_text())
    outdir = tmp_path / "out"
    before = earlier_reports(outdir)
    for target, expected in (
        (outdir / RUN / "COMPUTE_REPORT.csv", "refusing to replace the run's own report COMPUTE_REPORT.csv"),
        (outdir / RUN / "SUMMARY.json", "refusing to replace the run's own report SUMMARY.json"),
        (outdir / RUN / "cycles_by_cause.png", "refusing to replace the run's own report cycles_by_cause.png"),
        (topo, f"refusing to replace the input file {topo} with the trace"),
    ):
        result = desim("run", "-q", "-t", str(topo), "-p", str(outdir), "--trace", str(target))
        assert result.exit_code == 2 and expected in result.stderr, result.output
    assert snapshot(outdir) == before and topo.read_text().startswith("Layer")


def test_a_drawing_never_replaces_its_architecture_and_draws_before_it_prints(tmp_path):
    arch = tmp_path / "arch.yaml"
    arch.write_text((ROOT / "configs" / "scale.yaml").read_text())
    result = desim("describe", "-a", str(arch), "--png", str(arch))
    assert result.exit_code == 2 and f"refusing to replace the input file {arch} with the drawing" in result.stderr
    assert result.stdout == "" and arch.read_text().startswith("#")


def test_an_unknown_kind_among_known_ones_prints_nothing_but_the_error():
    result = desim("components", "dram", "nosuch")
    assert result.exit_code == 2 and result.stdout == "" and "unknown kind 'nosuch'" in result.stderr


TWO_ARRAYS = (
    "name: two_arrays\ncomponents:\n  bus: {kind: bus}\n  dram: {kind: dram}\n"
    + "".join(f"  {array}: {{kind: systolic_array, rows: 4, cols: 4}}\n" for array in ("a1", "a2"))
    + "".join(
        f"  {array}_{op}: {{kind: scratchpad, operand: {op}, capacity_bytes: 1024}}\n"
        for array in ("a1", "a2")
        for op in ("ifmap", "filter", "ofmap")
    )
    + "links:\n  - [bus.memory, dram.clients]\n"
    + "".join(
        f"  - [{array}.{op}, {array}_{op}.compute]\n  - [{array}_{op}.memory, bus.clients]\n"
        for array in ("a1", "a2")
        for op in ("ifmap", "filter", "ofmap")
    )
)
"""Two arrays sharing a bus and a DRAM."""


def test_a_refused_run_makes_no_folder(tmp_path):
    """Refused before -p is created: nothing is left behind."""
    (tmp_path / "two.yaml").write_text(TWO_ARRAYS + "split: diagonal\n")
    result = desim("run", "-q", "-a", str(tmp_path / "two.yaml"), "-t", TEST_CSV, "-p", str(tmp_path / "new" / "out"))
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"desim: error: {tmp_path / 'two.yaml'}:27: split: expected one of 'every', 'n', 'm', got 'diagonal'\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two.yaml"]


def test_two_arrays_write_their_reports_apart_and_the_summary_totals_them(tmp_path):
    (tmp_path / "two.yaml").write_text(TWO_ARRAYS + "split: n\n")
    result = desim("run", "-q", "-a", str(tmp_path / "two.yaml"), "-t", TEST_CSV, "-p", str(tmp_path))
    assert result.exit_code == 0, result.output
    folder = tmp_path / "two_arrays"
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == sorted(
        ["LAYER_STATS.jsonl", "SUMMARY.json", *(f"{a}/{name}" for a in ("a1", "a2") for name in ARRAY_REPORTS)]
    )
    summary = json.loads((folder / "SUMMARY.json").read_text())
    layers = read_report(folder / "a1" / "COMPUTE_REPORT.csv")
    assert len(layers) == summary["layers"] == len(read_report(folder / "a2" / "COMPUTE_REPORT.csv"))
    for array in ("a1", "a2"):
        check_stall_report(folder / array / "STALL_REPORT.csv")
        rows = read_report(folder / array / "COMPUTE_REPORT.csv")
        assert summary["arrays"][array]["totals"]["total_cycles"] == sum(int(row["Total Cycles"]) for row in rows)
    for layer in summary["per_layer"]:  # each layer lasts as long as its slower array, whose stalls it shows
        slower = max(layer["arrays"].values(), key=lambda figures: figures["total_cycles"])
        assert layer["total_cycles"] == slower["total_cycles"]
        assert layer["compute_cycles"] + layer["stall_cycles"] == layer["total_cycles"]
        assert layer["macs"] == sum(figures["macs"] for figures in layer["arrays"].values())
    assert summary["totals"]["macs"] == sum(a["totals"]["macs"] for a in summary["arrays"].values())


def test_an_output_folder_reached_through_a_link_is_fine(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    result = desim(
        "run", "-q", "-t", TEST_CSV, "-p", str(tmp_path / "link"), "--trace", str(tmp_path / "link" / "t.json")
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == [RUN, "t.json"]


def test_plot_takes_the_runs_lock_however_the_folder_is_named(tmp_path, monkeypatch):
    assert desim("run", "-q", "-t", TEST_CSV, "-p", str(tmp_path)).exit_code == 0
    (tmp_path / "alias").symlink_to(tmp_path / RUN)
    lock = os.open(tmp_path / f".{RUN}.lock", os.O_RDWR | os.O_CREAT)  # a run writing these reports
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        monkeypatch.chdir(tmp_path / RUN)
        for spelled in (".", str(tmp_path / "alias"), str(tmp_path / RUN)):
            result = desim("plot", spelled)
            assert result.exit_code == 2 and "another desim run is writing these reports now" in result.stderr
    finally:
        os.close(lock)
    assert not list((tmp_path / RUN).glob("*.png"))


def test_a_report_folder_that_is_a_symlink_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / RUN).symlink_to(elsewhere)
    result = desim("run", "-q", "-t", TEST_CSV, "-p", str(tmp_path / "out"))
    assert result.exit_code == 2 and "refusing to write reports into something that is not a folder" in result.stderr
    assert list(elsewhere.iterdir()) == []


def test_a_report_that_is_a_symlink_is_refused_and_its_target_kept(tmp_path):
    outdir = tmp_path / "out"
    earlier_reports(outdir)
    precious = tmp_path / "precious.txt"
    precious.write_text("mine")
    (outdir / RUN / "STALL_REPORT.csv").unlink()
    (outdir / RUN / "STALL_REPORT.csv").symlink_to(precious)
    before = snapshot(outdir)
    result = desim("run", "-q", "-t", TEST_CSV, "-p", str(outdir))
    assert result.exit_code == 2 and "refusing to replace a symbolic link with the report" in result.stderr
    assert snapshot(outdir) == before and precious.read_text() == "mine"


def test_a_run_keeps_the_other_files_in_its_report_folder(tmp_path):
    (tmp_path / RUN).mkdir()
    (tmp_path / RUN / "notes.txt").write_text("mine")
    assert desim("run", "-q", "-t", TEST_CSV, "-p", str(tmp_path)).exit_code == 0
    assert (tmp_path / RUN / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in (tmp_path / RUN).iterdir()) == sorted([*reports.REPORT_FILES, "notes.txt"])


# -- runs that stop: earlier reports stay until the first layer is done, finished layers are kept ---


def stop_at_layer(monkeypatch, index, error):
    """Make the run raise ``error`` as layer ``index`` finishes, before its rows are written."""
    add = reports.ReportWriter.add

    def failing_add(self, result):
        if result.index == index:
            raise error
        add(self, result)

    monkeypatch.setattr(reports.ReportWriter, "add", failing_add)


def alexnet(outdir, *extra):
    return desim("run", "-q", "-p", str(outdir), *extra)


def test_a_run_stopped_in_its_first_layer_leaves_the_earlier_reports_as_they_were(tmp_path, monkeypatch):
    outdir = tmp_path / "out"
    before = earlier_reports(outdir)
    stop_at_layer(monkeypatch, 0, KeyboardInterrupt())
    result = alexnet(outdir, "--trace", str(outdir / RUN / "t.json"))
    assert result.exit_code == 130
    assert result.stderr.strip() == f"desim: interrupted; no layer had finished, so {outdir / RUN}/ is as it was"
    assert snapshot(outdir) == before  # the trace too stays unwritten


def test_ctrl_c_after_two_layers_keeps_both_and_drops_the_earlier_summary(tmp_path, monkeypatch):
    outdir = tmp_path / "out"
    earlier_reports(outdir)
    stop_at_layer(monkeypatch, 2, KeyboardInterrupt())
    result = alexnet(outdir, "--trace", str(tmp_path / "t.json"))
    assert result.exit_code == 130
    folder = outdir / RUN
    assert result.stderr.strip() == f"desim: interrupted; {folder}/ keeps the 2 layers that finished"
    assert sorted(p.name for p in folder.iterdir()) == sorted(set(reports.REPORT_FILES) - {"SUMMARY.json"})
    for name in ("COMPUTE_REPORT.csv", "STALL_REPORT.csv"):
        assert [row["LayerID"] for row in read_report(folder / name)] == ["0", "1"]
    traced = json.loads((tmp_path / "t.json").read_text())["otherData"]["layers"]
    assert [layer["name"] for layer in traced] == ["Conv1", "Conv2", "Conv3"]  # the third ended too
    assert [p.name for p in outdir.iterdir()] == [RUN]


def test_a_run_too_long_for_exact_cycles_stops_naming_the_layers_line(tmp_path, monkeypatch):
    """The last guard (a bandwidth so low that cycles would pass 2^53) shown with a lower limit.

    Only the simulation's guard sees the lower limit: the array's own check of each layer's
    compute cycles, before time starts, keeps the value it was imported with.
    """
    default_registry().get("systolic_array")  # imported now, with the real limit
    monkeypatch.setattr(limits, "MAX_CYCLES", 1000)
    outdir = tmp_path / "out"
    before = earlier_reports(outdir)
    config = tmp_path / "slow.cfg"
    config.write_text((ROOT / "configs" / "scale.cfg").read_text().replace("CALC", "USER"))
    topo = tmp_path / "topo.csv"
    topo.write_text(CONV_HEADER + "C1, 8, 8, 3, 3, 2, 4, 1,\nC2, 8, 8, 3, 3, 2, 4, 1,\nC3, 66, 66, 3, 3, 64, 64, 1,\n")
    result = desim("run", "-q", "-c", str(config), "-t", str(topo), "-p", str(outdir))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"desim: error: {topo}:4: layer 2 (C3): the run reached "), result.stderr
    assert "desim simulates runs of fewer than 1000 cycles" in result.stderr
    assert [row["LayerID"] for row in read_report(outdir / RUN / "COMPUTE_REPORT.csv")] == ["0", "1"]
    assert snapshot(outdir) != before and not (outdir / RUN / "SUMMARY.json").exists()


def test_an_internal_error_is_one_line_asking_for_a_report(tmp_path, monkeypatch):
    stop_at_layer(monkeypatch, 1, RuntimeError("boom"))
    result = alexnet(tmp_path)
    assert result.exit_code == 70
    assert result.stderr == (
        "desim: internal error: RuntimeError: boom; please report it with this command line: "
        f"desim run -q -p {tmp_path}\n"
    )
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert [row["LayerID"] for row in read_report(tmp_path / RUN / "COMPUTE_REPORT.csv")] == ["0"]


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_debugging_shows_the_traceback(tmp_path, monkeypatch, how):
    stop_at_layer(monkeypatch, 0, RuntimeError("boom"))
    if how == "flag":
        result = desim("--debug", "run", "-q", "-p", str(tmp_path))
    else:
        monkeypatch.setenv("DESIM_DEBUG", "1")
        result = alexnet(tmp_path)
    assert result.exit_code == 70
    assert "Traceback (most recent call last)" in result.stderr and "RuntimeError: boom" in result.stderr


def test_a_killed_run_keeps_every_finished_layer(tmp_path):
    """SIGKILL mid-run: the CSVs hold whole rows for each layer that finished, nothing torn."""
    process = child(
        "run",
        "-q",
        "-t",
        "topologies/conv/mobilenet_v1.csv",
        "-p",
        str(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    report = tmp_path / RUN / "STALL_REPORT.csv"
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
    # The killed run left its staging folder and lock file; the next run clears them and succeeds.
    assert desim("run", "-q", "-t", TEST_CSV, "-p", str(tmp_path)).exit_code == 0
    assert [p.name for p in tmp_path.iterdir()] == [RUN]


@pytest.mark.parametrize(
    ("stop", "status", "said"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_a_stopped_run_exits_with_its_signals_status_and_whole_layers(tmp_path, stop, status, said):
    """Ctrl-C or kill: every report holds the same whole layers, the message counts them, nothing is left over."""
    trace = tmp_path / "t.json"
    process = child(
        "run",
        "-q",
        "-t",
        "topologies/conv/mobilenet_v1.csv",
        "-p",
        str(tmp_path / "out"),
        "--trace",
        str(trace),
        "--trace-layers",
        "0",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    folder = tmp_path / "out" / RUN
    report = folder / "COMPUTE_REPORT.csv"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not report.exists() or report.read_text().count("\n") < 20):
        time.sleep(0.01)
    process.send_signal(stop)
    assert process.wait(timeout=60) == status
    layers = {
        name: [int(line.split(",")[0]) for line in (folder / name).read_text().splitlines()[1:]]
        for name in ("COMPUTE_REPORT.csv", "BANDWIDTH_REPORT.csv", "DETAILED_ACCESS_REPORT.csv", "STALL_REPORT.csv")
    }
    layers["LAYER_STATS.jsonl"] = [
        json.loads(line)["id"] for line in (folder / "LAYER_STATS.jsonl").read_text().splitlines()
    ]
    finished = len(layers["COMPUTE_REPORT.csv"])
    assert finished >= 19 and all(ids == list(range(finished)) for ids in layers.values()), layers
    assert process.stderr.read().strip() == f"desim: {said}; {folder}/ keeps the {finished} layers that finished"
    assert json.loads(trace.read_text())["otherData"]["layers"][0]["index"] == 0  # the trace of layer 0 is kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "t.json"]  # no temporary trace file left
    assert [p.name for p in (tmp_path / "out").iterdir()] == [RUN]  # no lock or staging folder left


def test_a_reader_that_goes_away_does_not_stop_the_run(tmp_path):
    """``desim run | head -1``: the run finishes its reports, quietly, with status 0."""
    process = child("run", "-t", "topologies/conv/resnet50.csv", "-p", str(tmp_path), stdout=subprocess.PIPE)
    assert process.stdout.readline().startswith(b"layer   0 ")
    process.stdout.close()
    assert process.wait(timeout=120) == 0
    assert json.loads((tmp_path / RUN / "SUMMARY.json").read_text())["layers"] == 54


def test_a_rerun_replaces_the_reports_and_its_summary_describes_them(tmp_path):
    assert desim("run", "-q", "-p", str(tmp_path)).exit_code == 0  # AlexNet: 5 layers
    assert desim("run", "-q", "-t", TEST_CSV, "-p", str(tmp_path)).exit_code == 0  # 1 layer
    summary = json.loads((tmp_path / RUN / "SUMMARY.json").read_text())
    assert summary["layers"] == len(read_report(tmp_path / RUN / "COMPUTE_REPORT.csv")) == 1


@pytest.mark.parametrize("arch", sorted(path.name for path in (ROOT / "configs").glob("*.yaml")))
def test_every_shipped_architecture_runs_from_the_command_line(arch, tmp_path):
    result = desim("run", "-q", "-a", str(ROOT / "configs" / arch), "-t", TEST_CSV, "-p", str(tmp_path))
    assert result.exit_code == 0, result.output
    (folder,) = tmp_path.iterdir()
    summary = json.loads((folder / "SUMMARY.json").read_text())
    reports_written = sorted(folder.rglob("STALL_REPORT.csv"))
    assert len(reports_written) == len(summary.get("arrays", [None]))
    for report in reports_written:
        check_stall_report(report)
