"""A dram's device parameters: wrong values are refused up front, naming the key, never run."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from helpers import ROOT

from desim.cli import main

DDR4 = (ROOT / "configs" / "dram" / "ddr4-3200.yaml").read_text()
GIVEN = "preset: ddr4-3200, transaction_bytes: 4096"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("tREFI: 100", "dram.tREFI: tREFI (100) must be longer than tRFC (560)"),
        ("tRFC: 20000", "dram.tREFI: tREFI (12480) must be longer than tRFC (20000)"),
        ("tRCD: 4294967296", "dram.tRCD: expected an integer from 0 to 2^20"),
        ("tCK_ns: 0.000000001", "dram.tCK_ns: expected a number from 0.01 to 1000"),
        ("channel_count: 3", "dram.channel_count: channels must be a power of two, got 3"),
        ("columns: 4", "dram.columns: columns (4) must hold a burst of burst_length (8)"),
        ("address_mapping: ro ch ra ba bg", "dram.address_mapping: address_mapping must name each of"),
        ("tCCD_L: 2", "dram.tCCD_L: tCCD_L (2) is shorter than tCCD_S (4)"),
        ("granularity: foo", "dram.granularity: expected one of"),
        ("bandwidth_bytes_per_cycle: 8", "dram.bandwidth_bytes_per_cycle: is a parameter of the bandwidth pipe"),
        ("ranks: 16, bankgroups: 16, banks_per_group: 64", "dram: has 16,384 banks"),
    ],
)
def test_a_bad_device_parameter_is_refused(tmp_path, extra, message):
    arch = tmp_path / "bad.yaml"
    arch.write_text(DDR4.replace(GIVEN, f"{GIVEN}, {extra}"))
    result = CliRunner().invoke(main, ["run", "-a", str(arch), "-p", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 2
    assert f"bad.yaml:15: {message}" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("extra", ["CL: 20", "granularity: row"])
def test_device_parameters_need_a_preset(tmp_path, extra):
    arch = tmp_path / "pipe.yaml"
    arch.write_text(DDR4.replace(GIVEN, f"transaction_bytes: 4096, {extra}"))
    result = CliRunner().invoke(main, ["run", "-a", str(arch), "-p", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 2 and "is a device parameter: set a preset" in result.output
