from units.human import _UNITS


def test_units():
    assert _UNITS[0] == "B"
