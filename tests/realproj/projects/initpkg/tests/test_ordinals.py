import ordinals
import pytest
from ordinals import ordinal, ordinalize


def test_direct():
    assert [ordinal(n) for n in (1, 2, 3, 4)] == ["st", "nd", "rd", "th"]


def test_teens():
    assert ordinals.ordinal(112) == "th"


def test_through_the_module_global():
    assert ordinalize(22) == "22nd"


def test_raises():
    with pytest.raises(TypeError, match="not an integer"):
        ordinal("x")
