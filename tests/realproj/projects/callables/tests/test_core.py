from grouping.core import bucketize


def parity(x):
    return x % 2


def test_lambda_key():
    assert bucketize([1, 2, 3], lambda x: x > 1) == {False: [1], True: [2, 3]}


def test_test_module_function_key():
    assert bucketize(range(4), parity) == {0: [0, 2], 1: [1, 3]}


def test_closure_key():
    size = 3

    def by_size(word):
        return len(word) >= size

    assert bucketize(["a", "abc", "abcd"], by_size) == {False: ["a"], True: ["abc", "abcd"]}
