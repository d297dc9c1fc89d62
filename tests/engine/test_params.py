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
    assert "expected an integer from 1 to 2^53" in error.value.message


def test_float_infinity_only_when_allowed():
    assert named(Param(float, 1.0, allow_inf=True)).coerce("inf") == math.inf
    with pytest.raises(DesimError, match="expected a number"):
        named(Param(float, 1.0)).coerce(math.inf)
    with pytest.raises(DesimError, match="> 0"):
        named(Param(float, 1.0, positive=True)).coerce(0)


@pytest.mark.parametrize("text", ["1_0", "0x10", "١٢", "1e3", " 12 x", "+-1"])
def test_int_is_plain_ascii_decimal(text):
    with pytest.raises(DesimError, match="expected an integer"):
        named(Param(int, 1, minimum=1)).coerce(text)


@pytest.mark.parametrize("text", ["1_0.5", "nan", "0x1p3", "1e400", "-inf", "infinite"])
def test_float_is_plain_decimal_or_inf(text):
    with pytest.raises(DesimError, match="expected a number"):
        named(Param(float, 1.0, allow_inf=True)).coerce(text)


@pytest.mark.parametrize("value", [10**400, 2**53 + 1, "9" * 400, 1e300, -(2**60)])
def test_every_number_is_bounded_by_2_to_53(value):
    """Beyond 2^53 floats stop holding every integer; a 400-digit integer once overflowed float()."""
    for param in (named(Param(int, 1)), named(Param(float, 1.0, allow_inf=True))):
        with pytest.raises(DesimError, match="up to 2\\^53"):
            param.coerce(value)


def test_leading_zeros_do_not_make_a_number_long():
    """Python refuses to read integers of more than 4300 digits, leading zeros included."""
    assert named(Param(int, 1)).coerce("0" * 10_000 + "12") == 12
    assert named(Param(int, 1)).coerce("-" + "0" * 10_000) == 0
    assert named(Param(float, 1.0)).coerce("0" * 10_000 + "1.5") == 1.5


def test_bounds_are_inclusive_and_stated():
    p = named(Param(float, 1.0, minimum=1e-3, maximum=1e6, allow_inf=True), "bw")
    assert (p.coerce("0.001"), p.coerce(1e6), p.coerce(".5"), p.coerce("1e3")) == (1e-3, 1e6, 0.5, 1000.0)
    with pytest.raises(DesimError) as error:
        p.coerce(0.0009)
    assert error.value.message == "expected a number from 0.001 to 1000000 (or inf), got 0.0009"


def test_a_long_value_is_shown_cut_short():
    with pytest.raises(DesimError) as error:
        named(Param(int, 1)).coerce("x" * 500)
    assert error.value.message == "expected an integer up to 2^53, got '" + "x" * 36 + "..."  # 40 characters


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
