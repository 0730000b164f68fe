from geometry.aliases import rectangle_area


def test_alias():
    assert rectangle_area(3, 3) == 9
