"""Tests for `join_words` (slow.py)."""

from slow import join_words

def test_small():
    assert join_words(["a", "bc", "d"]) == "a bc d"
    assert join_words([]) == ""

def test_large():
    words = ["w%d" % (i % 97) for i in range(20000)]
    assert join_words(words) == " ".join(words)
