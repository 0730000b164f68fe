from geometry.measure import measure, measure_keyword


def test_default_value():
    assert measure(3, 5) == 15
    assert measure_keyword(2, 5) == 10
