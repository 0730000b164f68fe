from geometry.api import surface


def test_renamed():
    assert surface(4, 4) == 16
