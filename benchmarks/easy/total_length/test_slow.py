"""Tests for `total_length` (slow.py)."""

from slow import total_length

def test_small():
    assert total_length(["ab", "", "cde"]) == 5
    assert total_length([]) == 0

def test_large():
    words = ["x" * (i % 13) for i in range(40000)]
    assert total_length(words) == sum(len(w) for w in words)
