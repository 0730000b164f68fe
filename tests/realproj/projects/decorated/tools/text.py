import functools

TRACE = []


def traced(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        TRACE.append(function.__name__)
        return function(*args, **kwargs)

    return wrapper


@traced
def slugify(text, *, sep="-"):
    if not text:
        raise ValueError("empty text")
    words = []
    for word in text.lower().split():
        words.append("".join(c for c in word if c.isalnum()))
    return sep.join(w for w in words if w)


def join_all(*parts, sep=" ", **options):
    text = sep.join(str(p) for p in parts)
    if options.get("upper"):
        text = text.upper()
    return text


@functools.lru_cache(maxsize=None)  # noqa: UP033 - a wrapper with cache_info
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
