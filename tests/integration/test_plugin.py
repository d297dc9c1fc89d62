"""A component from an outside package, found through its entry point: a compressor under an L2."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import ROOT, advertise, check_stall_report, read_report

from desim.cli import main
from desim.errors import DesimError
from desim.registry import Registry, default_registry

PLUGINS = Path(__file__).parents[1] / "plugins"
HIERARCHY = (ROOT / "configs" / "hierarchy_l2.yaml").read_text()
TOPOLOGY = (
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
    "conv, 40, 40, 3, 3, 32, 64, 1,\nstrided, 45, 45, 5, 5, 16, 48, 2,\n"
)


@pytest.fixture
def installed(tmp_path, monkeypatch):
    yield from advertise(
        tmp_path / "site",
        monkeypatch,
        "desim.components",
        "compressor = compressor:Compressor",
        "compressor",
        default_registry.cache_clear,
    )


def with_compressor(ratio: float) -> str:
    """hierarchy_l2.yaml with a compressor between the L2 and the DRAM."""
    return HIERARCHY.replace(
        "  dram:", f"  comp:        {{kind: compressor, ratio: {ratio}, bandwidth_bytes_per_cycle: 8}}\n  dram:"
    ).replace(
        "  - {from: l2.memory, to: dram.clients}",
        "  - {from: l2.memory, to: comp.clients}\n  - {from: comp.memory, to: dram.clients}",
    )


def test_the_plugin_is_short_and_uses_only_public_names():
    source = (PLUGINS / "compressor.py").read_text()
    assert len(source.splitlines()) < 60
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["from desim import REQUEST, RESPONSE, Channel, Memory, Param, Port, Stat, resume_after"]


def test_a_forwarding_plugin_shrinks_traffic_and_its_stalls_carry_its_name(installed, tmp_path):
    assert "compressor" in default_registry().kinds()
    runner = CliRunner()
    (tmp_path / "layers.csv").write_text(TOPOLOGY)
    rows = {}
    for ratio in (1, 2):
        arch = tmp_path / f"x{ratio}.yaml"
        arch.write_text(with_compressor(ratio))
        out = tmp_path / f"out{ratio}"
        result = runner.invoke(main, ["run", "-q", "-a", str(arch), "-t", str(tmp_path / "layers.csv"), "-p", str(out)])
        assert result.exit_code == 0, result.output
        report = out / "hierarchy_l2" / "STALL_REPORT.csv"
        check_stall_report(report)
        rows[ratio] = read_report(report)
        lines = (out / "hierarchy_l2" / "LAYER_STATS.jsonl").read_text().splitlines()
        rows[ratio, "stats"] = [json.loads(line)["stats"] for line in lines]
    for plain, squeezed in zip(rows[1, "stats"], rows[2, "stats"], strict=True):
        # The L2 asks the same of the level below, and the DRAM moves half of it: each compressed
        # transaction rounds to a whole byte, so twice its bytes is within a byte of the original.
        moved = squeezed["l2.fill_bytes"] + squeezed["l2.write_through_bytes"]
        assert plain["l2.fill_bytes"] == squeezed["l2.fill_bytes"] and squeezed["comp.bytes_in"] == moved
        for direction in ("read", "write"):
            halved, whole = squeezed[f"dram.{direction}_bytes"], plain[f"dram.{direction}_bytes"]
            assert abs(2 * halved - whole) <= squeezed["dram.transactions"]
            assert whole > 0
    columns = list(rows[2][0])
    assert {"comp queue", "comp service"} <= set(columns)
    assert sum(int(row["comp service"]) for row in rows[2]) > 0


def test_a_plugin_param_named_like_an_engine_attribute_is_refused():
    from desim import Memory, Param

    class Clash(Memory):
        kind = "clash"
        channels = Param(int, 1)
        system = Param(str, "x")

    with pytest.raises(DesimError, match="declares 'channels', 'system', which the engine uses"):
        Registry().register(Clash)
