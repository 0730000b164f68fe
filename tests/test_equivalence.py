"""The equivalence rule of the verification harness: ``same(expected, actual, rel, abs)``."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Any

import pytest

from speedsmith.verify.harness import same

REL, ABS = 1e-9, 1e-12


class Point:
    """A plain class: instances compare by pickle bytes (no __eq__)."""

    def __init__(self, x: Any, y: Any) -> None:
        self.x = x
        self.y = y


class Loose:
    """Same type, custom __eq__ that always says yes."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


class Unpicklable:
    def __init__(self) -> None:
        self.lock = threading.Lock()  # distinct objects, compared by identity


def nested(depth: int) -> list[Any]:
    value: list[Any] = [1]
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("expected", "actual", "equal"),
    [
        # numbers: exact types
        pytest.param(1, 1, True, id="int-int"),
        pytest.param(1, 1.0, False, id="int-vs-float"),
        pytest.param(1, True, False, id="int-vs-bool"),
        pytest.param({0: "a", 1: "b"}, {False: "a", True: "b"}, False, id="dict-int-vs-bool-keys"),
        pytest.param({1, 2}, {True, 2}, False, id="set-int-vs-bool-member"),
        pytest.param({1.0: "x"}, {1: "x"}, False, id="dict-float-vs-int-key"),
        pytest.param(frozenset({1, "a"}), frozenset({"a", 1}), True, id="frozenset-same"),
        pytest.param(lambda x: x + 1, lambda x: x + 1, False, id="lambdas-apart"),
        pytest.param(True, True, True, id="bool-bool"),
        pytest.param(True, False, False, id="true-vs-false"),
        pytest.param(10**30, 10**30, True, id="bigint"),
        pytest.param(10**30, 10**30 + 1, False, id="bigint-off-by-one"),
        # floats: tolerance, NaN, signed zero
        pytest.param(1.0, 1.0 + 1e-12, True, id="float-within-rel-tol"),
        pytest.param(1.0, 1.0 + 1e-6, False, id="float-outside-rel-tol"),
        pytest.param(1.0, 1.1, False, id="float-different"),
        pytest.param(0.1 + 0.2, 0.3, True, id="float-rounding"),
        pytest.param(1e-13, 0.0, True, id="float-within-abs-tol"),
        pytest.param(math.nan, math.nan, True, id="nan-nan"),
        pytest.param(math.nan, 1.0, False, id="nan-vs-number"),
        pytest.param(1.0, math.nan, False, id="number-vs-nan"),
        pytest.param(0.0, -0.0, False, id="zero-vs-negative-zero"),
        pytest.param(-0.0, -0.0, True, id="negative-zero"),
        pytest.param(math.inf, math.inf, True, id="inf-inf"),
        pytest.param(math.inf, -math.inf, False, id="inf-vs-minus-inf"),
        pytest.param(1 + 2j, 1 + 2j + 1e-13j, True, id="complex-tolerance"),
        pytest.param(complex(0.0, 1.0), complex(-0.0, 1.0), False, id="complex-signed-zero"),
        # None, strings, bytes
        pytest.param(None, None, True, id="none-none"),
        pytest.param(None, 0, False, id="none-vs-zero"),
        pytest.param("a", b"a", False, id="str-vs-bytes"),
        pytest.param("a", "a", True, id="str-str"),
        pytest.param(b"\x00", b"\x00", True, id="bytes-bytes"),
        # containers
        pytest.param([1, 2], (1, 2), False, id="list-vs-tuple"),
        pytest.param([1, 2], [1, 2], True, id="list-list"),
        pytest.param([1, 2], [1, 2, 3], False, id="list-length"),
        pytest.param([1, 2], [2, 1], False, id="list-order"),
        pytest.param((1, [2.0]), (1, [2.0 + 1e-12]), True, id="tuple-nested-tolerance"),
        pytest.param([1, 2], [1, 2.0], False, id="element-type"),
        pytest.param([[1.0, 2.0], [3.0]], [[1.0, 2.0 + 1e-11], [3.0]], True, id="nested-floats"),
        pytest.param([[1.0, 2.0], [3.0]], [[1.0, 2.1], [3.0]], False, id="nested-floats-differ"),
        pytest.param([[math.nan]], [[math.nan]], True, id="nested-nan"),
        pytest.param({"a": 1, "b": 2}, {"a": 1, "b": 2}, True, id="dict-same-order"),
        pytest.param({"a": 1, "b": 2}, {"b": 2, "a": 1}, False, id="dict-key-order"),
        pytest.param({"a": 1}, {"a": 1.0}, False, id="dict-value-type"),
        pytest.param({"a": 1.0}, {"a": 1.0 + 1e-12}, True, id="dict-value-tolerance"),
        pytest.param({"a": 1}, {"a": 1, "b": 2}, False, id="dict-extra-key"),
        pytest.param({"a": 1}, OrderedDict(a=1), False, id="dict-vs-ordereddict"),
        pytest.param({1, 2}, {2, 1}, True, id="set-set"),
        pytest.param({1, 2}, frozenset({1, 2}), False, id="set-vs-frozenset"),
        pytest.param({1, 2}, {1, 3}, False, id="set-different"),
        pytest.param([], [], True, id="empty-lists"),
        pytest.param([], (), False, id="empty-list-vs-tuple"),
        # other objects
        pytest.param(Point(1, [2]), Point(1, [2]), True, id="object-same-dict"),
        pytest.param(Point(1, [2]), Point(1, [3]), False, id="object-different-dict"),
        pytest.param(Point(1, 2), (1, 2), False, id="object-vs-tuple"),
        pytest.param(3, Loose(), False, id="always-equal-object-vs-int"),
        pytest.param(Loose(), Loose(), True, id="always-equal-same-type"),
        pytest.param(range(3), range(3), True, id="range"),
        pytest.param(range(3), [0, 1, 2], False, id="range-vs-list"),
        pytest.param(Unpicklable(), Unpicklable(), False, id="unpicklable-distinct"),
    ],
)
def test_same(expected: Any, actual: Any, equal: bool):
    assert same(expected, actual, REL, ABS) is equal


@pytest.mark.parametrize(
    ("expected", "actual", "rel", "abs_", "equal"),
    [
        pytest.param(1.0, 1.01, 0.1, 0.0, True, id="loose-rel"),
        pytest.param(1.0, 1.01, 0.0, 0.0, False, id="no-tolerance"),
        pytest.param(0.0, 1e-3, 0.0, 1e-2, True, id="loose-abs"),
        pytest.param(1, 2, 1.0, 1.0, False, id="ints-ignore-tolerance"),
    ],
)
def test_same_tolerances(expected: Any, actual: Any, rel: float, abs_: float, equal: bool):
    assert same(expected, actual, rel, abs_) is equal


@pytest.mark.parametrize("depth", [pytest.param(50, id="50"), pytest.param(190, id="190")])
def test_same_nested_within_limit(depth: int):
    assert same(nested(depth), nested(depth), REL, ABS) is True


def test_same_nested_beyond_limit():
    assert same(nested(300), nested(300), REL, ABS) is True


def test_same_self_referencing_list_terminates():
    loop: list[Any] = []
    loop.append(loop)
    assert same(loop, loop, REL, ABS) in (True, False)
