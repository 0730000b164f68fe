"""Ordinal suffixes, defined in the package's own ``__init__.py``."""


def ordinal(number):
    if not isinstance(number, int):
        raise TypeError(f"not an integer: {number!r}")
    if 11 <= abs(number) % 100 <= 13:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(abs(number) % 10, "th")


def ordinalize(number):
    return f"{number}{ordinal(number)}"
