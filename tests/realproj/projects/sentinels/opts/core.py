"""Sentinels compared with ``is``: a recorded argument must be the very same object again."""

_MISSING = object()


def _make_sentinel(name):
    class Sentinel:  # a local class: its instances do not pickle
        def __repr__(self):
            return name

    return Sentinel()


_UNSET = _make_sentinel("_UNSET")


def lookup(mapping, key, default=_MISSING):
    if key in mapping:
        return mapping[key]
    if default is _MISSING:
        raise KeyError(key)
    return default


def first(items, default=_MISSING):
    return lookup(dict(enumerate(items)), 0, default)


def pad(items, size, fill=_UNSET):
    items = list(items)
    if fill is _UNSET:
        return items
    return items + [fill] * (size - len(items))


def pad_to_three(items):
    return pad(items, 3, _UNSET)
