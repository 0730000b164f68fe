from geometry.logged import logged_area


def test_wrapped():
    assert logged_area(6, 2) == 12
