from .core import area


def measure(width, height, how=area):
    """The target is this function's default value (bound before it could be patched)."""
    return how(width, height)


def measure_keyword(width, height, *, how=area):
    return how(width, height)
