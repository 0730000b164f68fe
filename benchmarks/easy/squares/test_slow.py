"""Tests for `squares` (slow.py)."""

from slow import squares

def test_small():
    assert squares([1, 2, 3]) == [1, 4, 9]
    assert squares([]) == []

def test_large():
    data = list(range(-15000, 15000))
    assert squares(data) == [x * x for x in data]
