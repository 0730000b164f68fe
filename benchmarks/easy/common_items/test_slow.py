"""Tests for `common_items` (slow.py)."""

from slow import common_items

def test_small():
    assert common_items([1, 2, 3, 4], [4, 2, 9]) == [2, 4]
    assert common_items([], [1]) == []

def test_large():
    first = [(i * 13) % 5000 for i in range(3000)]
    second = list(range(0, 5000, 3))
    lookup = set(second)
    assert common_items(first, second) == [x for x in first if x in lookup]
