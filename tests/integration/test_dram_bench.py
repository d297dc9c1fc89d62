"""desim dram-bench: one memory driven alone by a request stream, against figures worked out by hand."""

import json
import math

import pytest
from click.testing import CliRunner
from helpers import ROOT, reference_stream

from desim.cli import main
from desim.dram_bench import bench, read_stream
from desim.errors import DesimError
from desim.io.arch_yaml import read_arch_yaml

# configs/scale_dram10.yaml: the DRAM moves 10 bytes a cycle and answers 100 cycles after serving a
# transaction (of up to 4096 bytes, so one per 64-byte request); 1000 MHz, so a cycle is a nanosecond.
DRAM10 = ROOT / "configs" / "scale_dram10.yaml"
READS = [(64 * i, False) for i in range(100)]


def test_a_stream_with_no_limit_queues_at_the_dram_and_pays_its_latency_once_at_the_end():
    result = bench(read_arch_yaml(DRAM10), "dram", READS)
    # 6.4 cycles of data bus each, back to back: the k-th read's last byte is served at 6.4k and,
    # as requests complete at whole cycles, lands at ceil(6.4k) + 100.
    landed = [math.ceil(6.4 * k) + 100 for k in range(1, 101)]
    assert result.cycles == landed[-1] == 740
    assert result.ns == 740.0 and result.bytes == 6400
    assert result.gbps == pytest.approx(6400 / 740)
    assert result.read_latency_ns == pytest.approx(sum(landed) / 100)


def test_one_request_in_flight_pays_service_and_latency_every_time():
    result = bench(read_arch_yaml(DRAM10), "dram", READS, max_in_flight=1)
    assert result.read_latency_ns == 107.0  # ceil(6.4) + 100
    assert result.cycles == 100 * 107


def test_writes_have_no_read_latency(tmp_path):
    stream = tmp_path / "w.txt"
    stream.write_text("".join(f"{64 * i:#x} W\n" for i in range(10)))
    result = CliRunner().invoke(main, ["dram-bench", "-a", str(DRAM10), "--stream", str(stream), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["read_latency_ns"] is None
    # A write is acknowledged latency_cycles after it is served, as a read's data arrives.
    assert figures["requests"] == 10 and figures["cycles"] == math.ceil(6.4 * 10) + 100


def test_the_command_prints_the_figures(tmp_path):
    stream = tmp_path / "s.txt"
    stream.write_text("# two reads\n0x0 R\n0x40 r\n")
    result = CliRunner().invoke(main, ["dram-bench", "-a", str(DRAM10), "--stream", str(stream)])
    assert result.exit_code == 0, result.output
    assert result.output == (
        "dram: 2 requests, 128 bytes; last completed at 113.0 ns (113 cycles at 1000 MHz); 1.13 GB/s; "
        "mean read latency 110.0 ns\n"  # landed at ceil(6.4) + 100 = 107 and ceil(12.8) + 100 = 113
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0x0 R\n0x40\n", "s.txt:2: expected '<hex address> R' or '<hex address> W', got '0x40'"),
        ("0x0 X\n", "s.txt:1: expected '<hex address> R' or '<hex address> W', got '0x0 X'"),
        ("zz R\n", "s.txt:1: expected a hexadecimal address, got 'zz'"),
        ("0x_40 R\n", "s.txt:1: expected a hexadecimal address, got '0x_40'"),
        ("-0x40 R\n", "s.txt:1: the address -0x40 is out of range"),
        ("# nothing\n\n", "s.txt: the stream holds no requests"),
    ],
)
def test_a_bad_stream_is_refused_naming_its_line(tmp_path, text, message):
    stream = tmp_path / "s.txt"
    stream.write_text(text)
    with pytest.raises(DesimError) as caught:
        read_stream(stream)
    assert message in str(caught.value)
    result = CliRunner().invoke(main, ["dram-bench", "-a", str(DRAM10), "--stream", str(stream)])
    assert result.exit_code == 2 and message in result.output


def test_the_memory_must_be_one(tmp_path):
    stream = tmp_path / "s.txt"
    stream.write_text("0x0 R\n")
    result = CliRunner().invoke(main, ["dram-bench", "-a", str(DRAM10), "--stream", str(stream), "--node", "bus"])
    assert result.exit_code == 2
    assert "bus: is not a memory of this system (memories: dram)" in result.output
    channels = ROOT / "configs" / "dram_channels.yaml"
    result = CliRunner().invoke(main, ["dram-bench", "-a", str(channels), "--stream", str(stream)])
    assert result.exit_code == 2
    assert "main memories" in result.output and "name one with --node" in result.output


@pytest.mark.parametrize(
    ("pattern", "requests", "limit", "gbps", "latency"),
    [
        ("rand_read", 2_000, 1, 1.37, 46.2),
        ("seq_read", 10_000, 16, 13.00, 78.1),
        ("two_streams", 20_000, None, 10.06, 278.9),
    ],
)
def test_a_ddr4_preset_through_the_simulation_matches_dramsim3(pattern, requests, limit, gbps, latency):
    """The controller inside a running system (one event per completed transfer, run ahead and
    rolled back as requests arrive) gives DRAMsim3's figures (tests/data/dramsim3/README.md)."""
    system = read_arch_yaml(ROOT / "configs" / "dram" / "ddr4-3200.yaml")
    result = bench(system, "dram", reference_stream(pattern, requests), max_in_flight=limit)
    assert result.gbps == pytest.approx(gbps, rel=0.10)
    assert result.read_latency_ns == pytest.approx(latency, rel=0.15)
