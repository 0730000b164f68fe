import itertools

import pytest
from streams.windows import countdown, numbers, pairs


def test_all_pairs():
    assert list(pairs([1, 2, 3])) == [(1, 2), (2, 3)]


def test_empty():
    assert list(pairs([])) == []


def test_first_pair_only():
    assert next(pairs("abc")) == ("a", "b")


def test_some_pairs():
    assert list(itertools.islice(pairs(range(100)), 2)) == [(0, 1), (1, 2)]


def test_numbers_then_error():
    produced = []
    with pytest.raises(ValueError):
        for number in numbers("1 2 x 4"):
            produced.append(number)
    assert produced == [1, 2]


def test_countdown(capsys):
    steps = countdown(5)
    assert [next(steps), next(steps)] == [5, 4]
    assert capsys.readouterr().out == "at 5\nat 4\n"
