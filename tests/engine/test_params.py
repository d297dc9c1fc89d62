import math

import pytest

from desim import DesimError, Param


def named(param: Param, name: str = "p") -> Param:
    param.__set_name__(object, name)
    return param


def test_int_accepts_ints_integral_floats_and_numeric_strings():
    p = named(Param(int, 1, minimum=1))
    assert [p.coerce(v) for v in (5, 5.0, " 7 ")] == [5, 5, 7]


@pytest.mark.parametrize("bad", ["x", "", 2.5, True, 0, None])
def test_int_rejects_what_is_not_a_positive_integer(bad):
    p = named(Param(int, 1, minimum=1), "rows")
    with pytest.raises(DesimError) as error:
        p.coerce(bad)
    assert error.value.key == "rows"
    assert "expected an integer >= 1" in error.value.message


def test_float_infinity_only_when_allowed():
    assert named(Param(float, 1.0, allow_inf=True)).coerce("inf") == math.inf
    with pytest.raises(DesimError, match="expected a number"):
        named(Param(float, 1.0)).coerce(math.inf)
    with pytest.raises(DesimError, match="> 0"):
        named(Param(float, 1.0, positive=True)).coerce(0)


def test_choices_and_bools():
    df = named(Param(str, "ws", choices=("os", "ws", "is")), "dataflow")
    assert df.coerce("os") == "os"
    with pytest.raises(DesimError, match="one of 'os', 'ws', 'is'"):
        df.coerce("xs")
    flag = named(Param(bool, False))
    assert flag.coerce("True") is True and flag.coerce(False) is False
    with pytest.raises(DesimError):
        flag.coerce("yes")


def test_a_bad_default_fails_at_declaration():
    with pytest.raises(DesimError):
        Param(int, "many")


def test_describe_names_type_unit_default_and_description():
    p = named(Param(int, 65536, "bytes", "SRAM capacity"), "capacity_bytes")
    assert p.describe() == "capacity_bytes (int bytes, default 65536): SRAM capacity"
