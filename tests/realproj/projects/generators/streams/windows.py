def pairs(items):
    """Consecutive pairs, lazily."""
    iterator = iter(items)
    try:
        previous = next(iterator)
    except StopIteration:
        return
    for item in iterator:
        yield (previous, item)
        previous = item


def numbers(text):
    """The integers in ``text``, lazily; ValueError at the first word that is not one."""
    for word in text.split():
        yield int(word)


def countdown(start):
    """Prints as it goes: what a generator prints belongs to the items the test took."""
    while start > 0:
        print("at", start)
        yield start
        start -= 1
