"""Tests for `largest` (slow.py)."""

from slow import largest

def test_small():
    assert largest([3, 9, 2]) == 9
    assert largest([-5]) == -5

def test_large():
    data = [(i * 7919) % 100003 for i in range(40000)]
    assert largest(data) == max(data)
