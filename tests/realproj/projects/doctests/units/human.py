"""Human-readable sizes: only the doctests call ``human_size``.

>>> human_size(2048)
'2.0K'
"""

_UNITS = ["B", "K", "M", "G", "T"]


def human_size(count, ndigits=1):
    """Shorten a byte count.

    >>> human_size(512)
    '512.0B'
    >>> human_size(5 * 1024 * 1024, ndigits=2)
    '5.0M'
    >>> [human_size(n) for n in (1, 1024)]
    ['1.0B', '1.0K']
    """
    size = float(count)
    unit = 0
    while size >= 1024 and unit < len(_UNITS) - 1:
        size /= 1024
        unit += 1
    return f"{round(size, ndigits)}{_UNITS[unit]}"


def describe(count):
    """Calls the target through this module's globals.

    >>> describe(3 * 1024)
    'about 3.0K'
    """
    return "about " + human_size(count)
