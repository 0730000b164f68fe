"""Tests for `sum_of_squares` (slow.py)."""

from slow import sum_of_squares

def test_small():
    assert sum_of_squares([1, 2, 3]) == 14
    assert sum_of_squares([]) == 0

def test_large():
    data = [(i * 7919) % 1000 - 500 for i in range(30000)]
    assert sum_of_squares(data) == sum(x * x for x in data)
