import pytest
from opts.core import first, lookup, pad, pad_to_three


def test_lookup():
    assert lookup({"a": 1}, "a") == 1
    assert lookup({}, "a", None) is None


def test_first():
    assert first([5]) == 5
    with pytest.raises(KeyError):
        first([])


def test_pad():
    assert pad([1], 3, 0) == [1, 0, 0]
    assert pad_to_three([1]) == [1]
