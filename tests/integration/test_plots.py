"""Plots drawn headless from a run's folder, the progress callback, and the closing table."""

import gzip
import json

import pytest
from click.testing import CliRunner
from helpers import ROOT, system

from desim.cli import main
from desim.simulation import PROGRESS_CYCLES, Simulation
from desim.workload import Layer

matplotlib = pytest.importorskip("matplotlib")
RUN = "scale_example_run_32x32_ws"


def user_bandwidth_config(tmp_path, words_per_cycle=10):
    text = (ROOT / "configs" / "scale.cfg").read_text().replace("InterfaceBandwidth: CALC", "InterfaceBandwidth: USER")
    path = tmp_path / "bw.cfg"
    path.write_text(text.replace("Bandwidth : 10", f"Bandwidth : {words_per_cycle}"))
    return str(path)


def check_png(path, min_bytes=10_000):
    """A real picture: PNG signature, some size, more than a handful of colours."""
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > min_bytes
    pixels = imread(path)
    height, width = pixels.shape[:2]
    assert height > 300 and width > 500
    colours = {tuple(p) for p in pixels[::7, ::7, :3].reshape(-1, 3).round(2).tolist()}
    assert len(colours) > 20


def test_run_with_plot_draws_every_picture(tmp_path):
    args = ["run", "-c", user_bandwidth_config(tmp_path), "-p", str(tmp_path), "--plot", "--trace-layers", "0,2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    folder = tmp_path / RUN
    for name in ("cycles_by_cause.png", "dram_bandwidth.png", "occupancy_layer0.png"):
        check_png(folder / name)
        assert f"plot: {folder / name}" in result.output
    summary = json.loads((folder / "SUMMARY.json").read_text())
    assert summary["trace"] == "trace.json.gz" and (folder / "trace.json.gz").is_file()
    # The closing table: cycles, stall share by cause, utilisation, traffic and bandwidth, wall time.
    for text in ("total cycles", "stall cycles", "dram service", "utilisation", "dram traffic", "of 10 peak"):
        assert text in result.output
    assert "wall time" in result.output

    # Plotting again from the folder (or its parent) redraws them; --layer picks another layer.
    (folder / "dram_bandwidth.png").unlink()
    result = CliRunner().invoke(main, ["plot", str(tmp_path), "--layer", "2"])
    assert result.exit_code == 0, result.output
    check_png(folder / "dram_bandwidth.png")
    check_png(folder / "occupancy_layer2.png")
    result = CliRunner().invoke(main, ["plot", str(folder), "--layer", "1"])
    assert result.exit_code == 2 and "layer 1 is not in the trace (traced layers: 0, 2)" in result.output


def test_plot_without_a_trace_draws_the_per_layer_picture_only(tmp_path):
    assert CliRunner().invoke(main, ["run", "-q", "-p", str(tmp_path)]).exit_code == 0
    result = CliRunner().invoke(main, ["plot", str(tmp_path / RUN)])
    assert result.exit_code == 0, result.output
    check_png(tmp_path / RUN / "cycles_by_cause.png")
    assert sorted(p.name for p in (tmp_path / RUN).glob("*.png")) == ["cycles_by_cause.png"]
    result = CliRunner().invoke(main, ["plot", str(tmp_path / RUN), "--layer", "0"])
    assert result.exit_code == 2 and "--layer needs a timeline trace" in result.output


def test_plot_of_a_folder_without_a_run_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["plot", str(tmp_path)])
    assert result.exit_code == 2 and "not a run's report folder (no SUMMARY.json)" in result.output


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        ({"per_layer": 3}, "not a desim summary: run_name: missing"),
        (
            {
                "run_name": "r",
                "trace": None,
                "totals": {"total_cycles": 1, "stall_cycles": 0, "stall_causes": {}},
                "per_layer": [{"id": 0}],
            },
            "not a desim summary: per_layer[0].name: missing",
        ),
        ([1, 2], "not a desim summary: : expected an object"),
    ],
)
def test_plot_of_a_summary_of_another_shape_is_refused_and_draws_nothing(tmp_path, summary, expected):
    """Once a KeyError: every field the plots read is checked before the first picture is drawn."""
    (tmp_path / "SUMMARY.json").write_text(json.dumps(summary))
    result = CliRunner().invoke(main, ["plot", str(tmp_path)])
    assert result.exit_code == 2 and result.stderr.strip() == f"desim: error: {tmp_path / 'SUMMARY.json'}: {expected}"
    assert [path.name for path in tmp_path.iterdir()] == ["SUMMARY.json"]


def test_plot_of_a_trace_of_another_shape_is_refused_and_draws_nothing(tmp_path):
    assert (
        CliRunner()
        .invoke(main, ["run", "-q", "-t", str(ROOT / "topologies/conv/test.csv"), "-p", str(tmp_path), "--plot"])
        .exit_code
        == 0
    )
    folder = tmp_path / RUN
    for picture in folder.glob("*.png"):
        picture.unlink()
    trace = folder / "trace.json.gz"
    data = json.loads(gzip.decompress(trace.read_bytes()))
    data["traceEvents"][0]["args"] = {}  # a process name without its name
    trace.write_bytes(gzip.compress(json.dumps(data).encode()))
    result = CliRunner().invoke(main, ["plot", str(folder)])
    assert result.exit_code == 2 and "not a desim trace: traceEvents[0].args.name: missing" in result.stderr
    assert not list(folder.glob("*.png"))


def test_progress_is_reported_within_long_layers_without_changing_results():
    layers = [Layer("long", 60, 60, 3, 3, 64, 64, 1), Layer("short", 8, 8, 1, 1, 8, 8, 1)]
    sys_ = system(rows=8, cols=8, bandwidth=2)
    seen = []
    with_progress = [r.stats for r in Simulation(sys_).run(layers, progress=lambda i, f: seen.append((i, f)))]
    assert with_progress == [r.stats for r in Simulation(sys_).run(layers)]
    long_cycles = with_progress[0]["array.total_cycles"]
    within_first = [f for i, f in seen if i == 0]
    assert len(within_first) >= long_cycles // PROGRESS_CYCLES  # a report every PROGRESS_CYCLES
    assert within_first == sorted(within_first) and within_first[0] >= 0 and within_first[-1] < 1
    assert [i for i, _ in seen if i == 1]  # the next layer reports too


def test_describe_lists_and_draws_the_system(tmp_path):
    png = tmp_path / "graph.png"
    result = CliRunner().invoke(main, ["describe", "-a", str(ROOT / "configs/scale.yaml"), "--png", str(png)])
    assert result.exit_code == 0, result.output
    assert "sram_ifmap -> bus -> dram" in result.output and "systolic_array" in result.output
    check_png(png, min_bytes=5_000)
    result = CliRunner().invoke(main, ["describe", "-c", str(ROOT / "configs/google.cfg")])
    assert result.exit_code == 0 and "dataflow=os" in result.output
