import pytest
from tools import text
from tools.text import fib, join_all, slugify


def test_slugify():
    assert slugify("Hello, World!") == "hello-world"
    assert slugify("A b", sep="_") == "a_b"
    assert "slugify" in text.TRACE


def test_slugify_raises():
    with pytest.raises(ValueError, match="empty text"):
        slugify("")


def test_join_all():
    assert join_all(1, "a", sep="+") == "1+a"
    assert join_all("x", "y", upper=True) == "X Y"


def test_fib_cache():
    fib.cache_clear()
    assert fib(10) == 55
    assert fib.cache_info().currsize == 11
