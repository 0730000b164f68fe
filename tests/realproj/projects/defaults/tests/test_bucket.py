from memo.bucket import collect


def test_shared_default():
    assert collect(1) == [1]
    assert collect(2) == [1, 2]
    assert collect(3, []) == [3]
