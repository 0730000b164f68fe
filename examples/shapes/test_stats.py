import random

from stats import dedupe, sum_of_squares


def test_sum_of_squares_small():
    assert sum_of_squares([1, 2, 3]) == 14
    assert sum_of_squares([]) == 0
    assert sum_of_squares([-4]) == 16


def test_sum_of_squares_large():
    rng = random.Random(7)
    nums = [rng.randint(-1000, 1000) for _ in range(20000)]
    assert sum_of_squares(nums) == sum(n * n for n in nums)


def test_dedupe_keeps_first_occurrence():
    assert dedupe([3, 1, 3, 2, 1]) == [3, 1, 2]
    assert dedupe([]) == []


def test_dedupe_large():
    rng = random.Random(11)
    items = [rng.randint(0, 500) for _ in range(3000)]
    result = dedupe(items)
    assert len(result) == len(set(items))
