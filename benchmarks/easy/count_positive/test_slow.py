"""Tests for `count_positive` (slow.py)."""

from slow import count_positive

def test_small():
    assert count_positive([1, -2, 0, 5]) == 2
    assert count_positive([]) == 0

def test_large():
    data = [(i * 31) % 101 - 50 for i in range(30000)]
    assert count_positive(data) == len([v for v in data if v > 0])
