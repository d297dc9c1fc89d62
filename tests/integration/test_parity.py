"""Contract 1: with ideal memory, desim's reports equal SCALE-Sim 2.0.2's, layer by layer.

The expected numbers are read from SCALE-Sim's own reports in ``tests/data/scalesim-2.0.2``.
"""

import pytest
from click.testing import CliRunner
from helpers import CASES, REFERENCE, check_stall_report, read_report

from desim.cli import main

IDEAL = [case for case in CASES if case != "test_google"]  # test_google runs in USER mode


def run_case(case: str, tmp_path) -> dict[str, list[dict[str, str]]]:
    folder = REFERENCE / case
    input_type = "gemm" if case.startswith("gemm") else "conv"
    result = CliRunner().invoke(
        main,
        [
            "run",
            "-q",
            "-c",
            str(folder / "config.cfg"),
            "-t",
            str(folder / "topology.csv"),
            "-p",
            str(tmp_path),
            "-i",
            input_type,
        ],
    )
    assert result.exit_code == 0, result.output
    (outdir,) = tmp_path.iterdir()
    check_stall_report(outdir / "STALL_REPORT.csv")
    return {name: read_report(outdir / f"{name}.csv") for name in ("COMPUTE_REPORT", "DETAILED_ACCESS_REPORT")}


@pytest.mark.parametrize("case", IDEAL)
def test_compute_report_matches(case, tmp_path):
    ours = run_case(case, tmp_path)["COMPUTE_REPORT"]
    theirs = read_report(REFERENCE / case / "COMPUTE_REPORT.csv")
    assert len(ours) == len(theirs)
    for mine, ref in zip(ours, theirs, strict=True):
        assert int(mine["Total Cycles"]) == int(ref["Total Cycles"])
        assert int(mine["Stall Cycles"]) == int(ref["Stall Cycles"]) == 0
        assert float(mine["Overall Util %"]) == pytest.approx(float(ref["Overall Util %"]), abs=1e-6)
        assert float(mine["Mapping Efficiency %"]) == pytest.approx(float(ref["Mapping Efficiency %"]), abs=1e-6)


@pytest.mark.parametrize("case", CASES)
def test_sram_read_counts_match(case, tmp_path):
    ours = run_case(case, tmp_path)["DETAILED_ACCESS_REPORT"]
    theirs = read_report(REFERENCE / case / "DETAILED_ACCESS_REPORT.csv")
    for mine, ref in zip(ours, theirs, strict=True):
        assert int(mine["SRAM IFMAP Reads"]) == int(ref["SRAM IFMAP Reads"])
        assert int(mine["SRAM Filter Reads"]) == int(ref["SRAM Filter Reads"])


def test_user_bandwidth_case_matches_in_compute_and_adds_its_own_stalls(tmp_path):
    """test_google: 10 words/cycle. SCALE-Sim 2.0.2 reports no stalls; desim's DRAM makes some."""
    ours = run_case("test_google", tmp_path)
    (outdir,) = tmp_path.iterdir()
    (stall,) = read_report(outdir / "STALL_REPORT.csv")
    (ref,) = read_report(REFERENCE / "test_google" / "COMPUTE_REPORT.csv")
    (mine,) = ours["COMPUTE_REPORT"]
    assert int(stall["Compute Cycles"]) == int(ref["Total Cycles"])  # the compute part is SCALE-Sim's
    assert float(mine["Mapping Efficiency %"]) == pytest.approx(float(ref["Mapping Efficiency %"]), abs=1e-6)
    assert int(stall["Total Cycles"]) == int(stall["Compute Cycles"]) + int(stall["Stall Cycles"])
    assert int(mine["Total Cycles"]) == int(stall["Total Cycles"])
    # desim's stalls are its own, but bounded: the layer takes at least as long as moving its DRAM
    # bytes at 10 bytes/cycle, and no longer than computing and then moving them.
    (detail,) = read_report(outdir / "DETAILED_ACCESS_REPORT.csv")
    moved = sum(int(detail[f"DRAM {op}"]) for op in ("IFMAP Reads", "Filter Reads", "OFMAP Writes"))
    elapsed, compute = int(stall["Total Cycles"]) + 1, int(stall["Compute Cycles"]) + 1
    assert max(compute, moved / 10) <= elapsed <= compute + moved / 10
