"""Tests for `dedupe` (slow.py)."""

from slow import dedupe

def test_small():
    assert dedupe([3, 1, 3, 2, 1]) == [3, 1, 2]
    assert dedupe([]) == []

def test_large():
    data = [(i * 37) % 1500 for i in range(6000)]
    assert dedupe(data) == list(dict.fromkeys(data))
