from counters.counter import Counter


def test_add():
    counter = Counter()
    assert counter.add(2) == 2
    assert counter.add(3) == 5
