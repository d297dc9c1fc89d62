import math
import warnings

import pytest
from helpers import REFERENCE, ROOT

from desim import DesimError
from desim.io.scalesim_cfg import read_scalesim_cfg

V2 = """[general]
run_name = demo

[architecture_presets]
ArrayHeight:    16
ArrayWidth:     8
IfmapSramSzkB:   64
FilterSramSzkB:  32
OfmapSramSzkB:   16
Dataflow : os
Bandwidth : 10

[run_presets]
InterfaceBandwidth: {mode}
"""


def write(tmp_path, text):
    path = tmp_path / "arch.cfg"
    path.write_text(text)
    return path


def error_of(tmp_path, text) -> DesimError:
    with pytest.raises(DesimError) as error:
        read_scalesim_cfg(write(tmp_path, text))
    return error.value


def test_v2_calc_is_ideal_memory(tmp_path):
    cfg = read_scalesim_cfg(write(tmp_path, V2.format(mode="CALC")))
    assert (cfg.run_name, cfg.rows, cfg.cols, cfg.dataflow) == ("demo", 16, 8, "os")
    assert cfg.sram_bytes == {"ifmap": 65536, "filter": 32768, "ofmap": 16384}
    assert math.isinf(cfg.bandwidth_bytes_per_cycle) and cfg.word_bytes == 1


def test_user_bandwidth_is_words_per_cycle_times_word_size(tmp_path):
    text = V2.format(mode="USER").replace("Bandwidth : 10", "Bandwidth : 10\nWordBytes: 2")
    cfg = read_scalesim_cfg(write(tmp_path, text))
    assert (cfg.bandwidth_bytes_per_cycle, cfg.word_bytes) == (20, 2)
    system = cfg.system()
    assert system.params_of("dram")["bandwidth_bytes_per_cycle"] == 20


def test_v1_keys_and_quoted_run_name(tmp_path):
    text = """[general]
run_name = "v1_run"

[architecture_presets]
ArrayHeight:    32
ArrayWidth:     32
IfmapSramSz:    512
FilterSramSz:   512
OfmapSramSz:    256
IfmapOffset:    0
Dataflow:       ws

[network_presets]
TopologyCsvLoc: "topologies/conv/alexnet.csv"
"""
    with pytest.warns(UserWarning, match=r"IfmapOffset"):
        cfg = read_scalesim_cfg(write(tmp_path, text))
    assert cfg.run_name == "v1_run" and cfg.sram_bytes["ofmap"] == 256 * 1024
    assert math.isinf(cfg.bandwidth_bytes_per_cycle)  # no [run_presets]: SCALE-Sim v1 had no bandwidth mode
    assert cfg.topology == "topologies/conv/alexnet.csv"


def test_v3_sections_are_accepted_and_unmodelled_keys_named_once(recwarn):
    read_scalesim_cfg(REFERENCE / "alexnet_scale32ws" / "config.cfg")
    (warning,) = [w for w in recwarn if "ignored" in str(w.message)]
    text = str(warning.message)
    assert "IfmapOffset" in text and "ReadRequestBuffer" in text
    assert "Sparsity" not in text and "IfmapSRAMBankNum" not in text  # switched off: nothing to model


def test_switched_on_features_and_unknown_keys_are_named(tmp_path):
    text = V2.format(mode="CALC") + "\n[sparsity]\nSparsitySupport : true\nBlockSize : 8\n\n[extra]\nFoo: 1\n"
    with pytest.warns(UserWarning) as record:
        read_scalesim_cfg(write(tmp_path, text))
    (message,) = [str(w.message) for w in record]
    assert "[sparsity] SparsitySupport, BlockSize" in message and "does not know: [extra] Foo" in message


def test_shipped_configs_read_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("scale.cfg", "google.cfg", "eyeriss.cfg"):
            read_scalesim_cfg(ROOT / "configs" / name).system().validate()
    assert read_scalesim_cfg(ROOT / "configs" / "eyeriss.cfg").rows == 12


def test_missing_file(tmp_path):
    with pytest.raises(DesimError, match="config file not found"):
        read_scalesim_cfg(tmp_path / "none.cfg")


def test_missing_section(tmp_path):
    text = V2.format(mode="CALC").replace("[general]\nrun_name = demo\n", "")
    error = error_of(tmp_path, text)
    assert "missing section [general]" in error.message and error.file.endswith("arch.cfg")


def test_missing_key(tmp_path):
    error = error_of(tmp_path, V2.format(mode="CALC").replace("ArrayWidth:     8\n", ""))
    assert (error.key, error.message) == ("ArrayWidth", "missing key in [architecture_presets]")


def test_unknown_dataflow_names_line_and_key(tmp_path):
    error = error_of(tmp_path, V2.format(mode="CALC").replace("Dataflow : os", "Dataflow : rs"))
    assert (error.line, error.key) == (10, "Dataflow") and "unknown dataflow 'rs'" in error.message


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("ArrayHeight:    16", "ArrayHeight:    sixteen", "ArrayHeight"),
        ("ArrayHeight:    16", "ArrayHeight:    0", "ArrayHeight"),
        ("IfmapSramSzkB:   64", "IfmapSramSzkB:   -1", "IfmapSramSzkB"),
    ],
)
def test_bad_numbers_name_line_and_key(tmp_path, old, new, key):
    error = error_of(tmp_path, V2.format(mode="CALC").replace(old, new))
    assert error.key == key and error.line is not None and "expected a positive" in error.message


def test_bad_bandwidth_mode_and_value(tmp_path):
    assert "expected CALC or USER" in error_of(tmp_path, V2.format(mode="MAX")).message
    error = error_of(tmp_path, V2.format(mode="USER").replace("Bandwidth : 10", "Bandwidth : fast"))
    assert error.key == "Bandwidth"


def test_syntax_errors_name_the_line(tmp_path):
    assert error_of(tmp_path, "ArrayHeight: 4\n").line == 1
    error = error_of(tmp_path, V2.format(mode="CALC").replace("Dataflow : os", "Dataflow : os\nDataflow : ws"))
    assert error.line == 11
