from geometry.shapes import Rect


def test_class_attribute():
    assert Rect(5, 2).size() == 10
    assert Rect.area_of(1, 7) == 7
