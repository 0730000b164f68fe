"""The replay program of the verification harness: does the candidate behave like the
original? (stdlib only; loaded by path by ``harness.py``, which wires it with ``setup``.)

- ``invoke`` calls a function the way a test did: its output captured, a returned iterator
  consumed as the test consumed it, the arguments kept for comparison after the call; an
  ``Outcome`` is what the call did;
- ``check_recorded`` / ``failing_calls`` replay the recorded calls and compare each
  ``Outcome`` with the recorded one (``_compare``: value or exception, printed text, yielded
  items and how the iteration ended, arguments after the call);
- ``Defaults`` restores mutable default values (``bucket=[]``) between passes;
- ``docstring_examples`` runs the docstring's ``>>>`` examples with each function;
- ``generated_inputs`` compares them on inputs Hypothesis draws from the type hints, or shaped
  like the recorded arguments (``_like``, ``_inferred_strategies``).

Everything here runs in the harness process after its confinement and its audit hook; which
role a call's side effects belong to comes from the harness (``_as``), never from here.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import math
import pickle
import sys
from typing import Any

_STDOUT_CAP = 1 << 16

_eq: Any = None
"""The harness's ``equivalence`` module (``same``, ``short``, ``type_name``)."""
same: Any = None
_as: Any = None
"""The harness's ``_as(fn)``: side effects meanwhile are ``fn``'s (original or candidate)."""
_perf_counter: Any = None
"""``time.perf_counter`` as the harness captured it before any candidate code ran."""


def setup(eq: Any, as_role: Any, perf_counter: Any) -> None:
    """Wire this module to the harness's shared state; called once, before any user code."""
    global _eq, same, _as, _perf_counter
    _eq, same, _as, _perf_counter = eq, eq.same, as_role, perf_counter


class _Capped(io.StringIO):
    def write(self, text: str) -> int:
        if self.tell() < _STDOUT_CAP:
            super().write(text[: _STDOUT_CAP - self.tell()])
        return len(text)


_ITEMS_CAP = 10000


class Outcome:
    """What one call did: value or exception, printed text, yielded items (and how the
    iteration ended: ``"stop"``, ``"more"`` (still yielding), ``(exception name, message)``,
    or None when not looked at), args after."""

    __slots__ = ("args_after", "end", "exc_message", "exc_name", "items", "printed", "value")

    def __init__(self) -> None:
        self.value: Any = None
        self.exc_name: str | None = None
        self.exc_message = ""
        self.printed = ""
        self.items: list[Any] | None = None
        self.end: Any = None
        self.args_after: Any = None


def invoke(
    fn: Any, args: Any, kwargs: Any, take: int | None, ended: bool = True, watch: Any = None
) -> Outcome:
    """Call ``fn``. An iterator result is consumed as the test consumed it: ``take`` items
    (None: up to 10000), then, if ``ended`` (the test ran it to its end, or it raised), one
    more step to see how it ends. ``watch``: a context manager around the call alone."""
    outcome = Outcome()
    buffer = _Capped()
    saved = sys.stdout
    sys.stdout = buffer
    try:
        with _as(fn), watch if watch is not None else contextlib.nullcontext():
            outcome.value = fn(*args, **kwargs)
            if _is_iterator(outcome.value):
                iterator, outcome.value = outcome.value, None
                outcome.items = []
                _consume(iterator, outcome, _ITEMS_CAP if take is None else take, ended)
            elif inspect.iscoroutine(outcome.value):
                outcome.value.close()  # never awaited: no "never awaited" warning
    except Exception as exc:
        outcome.exc_name, outcome.exc_message = _eq.type_name(type(exc)), str(exc)[:500]
    finally:
        sys.stdout = saved
    outcome.printed = buffer.getvalue()
    outcome.args_after = (args, kwargs)
    return outcome


def _consume(iterator: Any, outcome: Outcome, take: int, ended: bool) -> None:
    items = outcome.items
    assert items is not None
    for _ in range(take + (1 if ended else 0)):
        try:
            item = next(iterator)
        except StopIteration:
            outcome.end = "stop"
            return
        except Exception as exc:
            outcome.end = (_eq.type_name(type(exc)), str(exc)[:500])
            return
        if len(items) == take:
            outcome.end = "more"
            return
        items.append(item)


def _is_iterator(value: Any) -> bool:
    try:
        return (
            hasattr(value, "__next__") and iter(value) is value and not isinstance(value, io.IOBase)
        )
    except Exception:
        return False


def _compare(expected: Outcome, actual: Outcome, config: dict[str, Any]) -> str | None:
    """None if ``actual`` behaves like ``expected``, else what differs."""
    rel, abs_ = config["rel_tol"], config["abs_tol"]
    if expected.exc_name is not None or actual.exc_name is not None:
        if actual.exc_name is None:
            got = _eq.short(actual.value) if actual.items is None else "an iterator"
            return f"expected {expected.exc_name}, got {got}"
        if expected.exc_name is None:
            want = _eq.short(expected.value) if expected.items is None else "an iterator"
            return f"expected {want}, raised {actual.exc_name}: {_eq.short(actual.exc_message)}"
        if expected.exc_name != actual.exc_name:
            return f"expected {expected.exc_name}, got {actual.exc_name}"
        if (
            config.get("exception_messages", True)
            and _stable(expected.exc_message)
            and expected.exc_message != actual.exc_message
        ):
            return (
                f"expected {expected.exc_name}({expected.exc_message!r}), "
                f"got message {actual.exc_message!r}"
            )
    elif (expected.items is None) != (actual.items is None):
        return "expected an iterator" if expected.items is not None else "returned an iterator"
    elif expected.items is not None:
        if not same(expected.items, actual.items, rel, abs_):
            return f"yielded {_eq.short(actual.items)}, expected {_eq.short(expected.items)}"
        problem = _compare_end(expected, actual, config.get("exception_messages", True))
        if problem:
            return problem
    elif not same(expected.value, actual.value, rel, abs_):
        want, got = _eq.short(expected.value), _eq.short(actual.value)
        if want == got and type(expected.value) is not type(actual.value):
            return (
                f"expected {_eq.short(expected.value)} ({_eq.type_name(type(expected.value))}), "
                f"got {_eq.short(actual.value)} ({_eq.type_name(type(actual.value))})"
            )
        return f"expected {_eq.short(expected.value)}, got {_eq.short(actual.value)}"
    if expected.printed != actual.printed:
        return f"printed {actual.printed[:80]!r}, expected {expected.printed[:80]!r}"
    if not same(expected.args_after, actual.args_after, rel, abs_):
        return "mutated its arguments differently"
    return None


def _compare_end(expected: Outcome, actual: Outcome, messages: bool) -> str | None:
    """How the iteration ended, where the recording saw it end."""
    want, got = expected.end, actual.end
    if want is None or want == got:
        return None
    same_exception = isinstance(want, tuple) and isinstance(got, tuple) and want[0] == got[0]
    if same_exception and (not messages or not _stable(want[1]) or want[1] == got[1]):
        return None
    count = len(expected.items or ())

    def shown(end: Any) -> str:
        if end == "stop":
            return f"stopped after {count} items"
        if end == "more":
            return f"yielded more than {count} items"
        if end is None:
            return "did not end"
        return f"raised {end[0]}({_eq.short(end[1], 80)}) after {count} items"

    return f"{shown(got)}; the original {shown(want)}"


def _stable(message: str) -> bool:
    """A message without memory addresses can be compared."""
    return " at 0x" not in message


def _recorded(call: dict[str, Any]) -> Outcome:
    outcome = Outcome()
    if call["exc_type"] is not None:
        outcome.exc_name, outcome.exc_message = call["exc_type"], call["exc_message"]
    elif call.get("iterator"):
        outcome.items = pickle.loads(call["result"])
        if call.get("iter_exc_type"):
            outcome.end = (call["iter_exc_type"], call.get("iter_exc_message") or "")
        elif call.get("exhausted"):
            outcome.end = "stop"
    else:
        outcome.value = pickle.loads(call["result"])
    outcome.printed = call.get("printed", "")
    outcome.args_after = pickle.loads(call["after"])
    return outcome


_PLAIN = (int, float, complex, str, bytes, bool, type(None))


def _plain_data(value: Any, budget: list[int], depth: int = 0) -> bool:
    """Builtin scalars and containers only (deep-copying them touches no class)."""
    budget[0] -= 1
    if budget[0] < 0 or depth > 20:
        return False
    kind = type(value)
    if kind in _PLAIN:
        return True
    if kind in (list, tuple, set, frozenset):
        return all(_plain_data(item, budget, depth + 1) for item in value)
    if kind is dict:
        return all(
            _plain_data(k, budget, depth + 1) and _plain_data(v, budget, depth + 1)
            for k, v in value.items()
        )
    return kind is bytearray


class Defaults:
    """Pristine copies of the default values (plain data: the ``bucket=[]`` idiom) of the
    original's and the candidate's functions, decorated ones included: each comparison
    starts from the state the recording run started from."""

    def __init__(self, *functions: Any) -> None:
        self._saved: list[tuple[Any, Any, Any]] = []
        seen: set[int] = set()
        for function in functions:
            hops = 0
            while function is not None and hops < 10 and id(function) not in seen:
                hops += 1
                seen.add(id(function))
                function = getattr(function, "__func__", function)
                if hasattr(function, "__defaults__") and hasattr(function, "__code__"):
                    positional = self._copy(function.__defaults__)
                    keywords = self._copy(function.__kwdefaults__)
                    self._saved.append((function, positional, keywords))
                function = getattr(function, "__wrapped__", None)

    @staticmethod
    def _copy(values: Any) -> Any:
        if values is None:
            return None
        items = values.items() if isinstance(values, dict) else enumerate(values)
        copied = {key: copy.deepcopy(value) if _plain_data(value, [10000]) else value
                  for key, value in items}  # fmt: skip
        return copied if isinstance(values, dict) else tuple(copied.values())

    def reset(self) -> None:
        for function, positional, keywords in self._saved:
            try:
                function.__defaults__ = self._copy(positional)
                function.__kwdefaults__ = self._copy(keywords)
            except (AttributeError, TypeError):
                pass


def check_recorded(
    fn: Any, calls: list[dict[str, Any]], config: dict[str, Any], watch: Any = None
) -> list[str]:
    mismatches: list[str] = []
    for index, call in enumerate(calls):
        args, kwargs = pickle.loads(call["args"])
        shown = _eq.short(args, 120)
        expected = _recorded(call)
        take = len(expected.items) if expected.items is not None else None
        actual = invoke(fn, args, kwargs, take, expected.end is not None, watch)
        problem = _compare(expected, actual, config)
        if problem:
            mismatches.append(f"call {index} {shown}: {problem}")
        if len(mismatches) >= 5:
            break
    return mismatches


def failing_calls(
    fn: Any, calls: list[dict[str, Any]], config: dict[str, Any], watch: Any = None
) -> dict[int, str]:
    """Every recorded call that does not replay as recorded: index -> what differs."""
    failing: dict[int, str] = {}
    for index, call in enumerate(calls):
        args, kwargs = pickle.loads(call["args"])
        expected = _recorded(call)
        take = len(expected.items) if expected.items is not None else None
        actual = invoke(fn, args, kwargs, take, expected.end is not None, watch)
        problem = _compare(expected, actual, config)
        if problem:
            failing[index] = f"call {index} {_eq.short(args, 120)}: {problem}"
    return failing


def docstring_examples(original: Any, candidate: Any, config: dict[str, Any]) -> list[str]:
    """Run the docstring's ``>>>`` examples with each function; compare what they show."""
    import doctest

    doc = getattr(original, "__doc__", None) or ""
    examples = doctest.DocTestParser().get_examples(doc)
    if not examples:
        return []
    name = original.__name__
    base = dict(getattr(sys.modules.get(original.__module__), "__dict__", {}))

    def shown(fn: Any) -> list[str]:
        namespace = dict(base, **{name: fn})
        results = []
        for example in examples[:50]:
            buffer = _Capped()
            saved, saved_hook = sys.stdout, sys.displayhook
            sys.stdout = buffer
            sys.displayhook = lambda value: None if value is None else print(repr(value))
            try:
                with _as(fn):
                    exec(compile(example.source, "<doctest>", "single"), namespace)
            except Exception as exc:
                print(f"raised {_eq.type_name(type(exc))}: {exc}")
            finally:
                sys.stdout, sys.displayhook = saved, saved_hook
            results.append(buffer.getvalue())
        return results

    mismatches = []
    # zip(strict=) is 3.10+: the harness runs on the project's interpreter (3.9+)
    for example, want, got in zip(examples, shown(original), shown(candidate)):  # noqa: B905
        if want != got:
            source = example.source.strip()
            mismatches.append(f"docstring example {source[:80]!r}: {got[:80]!r}, not {want[:80]!r}")
            break
    return mismatches


def _like(values: list[Any], st: Any, depth: int = 0) -> Any:
    """A Hypothesis strategy for values shaped like the recorded ``values``: same types, ints
    and floats within the recorded range, strings from the recorded characters, containers no
    longer than recorded. None for anything else."""
    kinds = {type(v) for v in values}
    if not values or depth > 3:
        return None
    if kinds == {bool}:
        return st.booleans()
    if kinds == {int}:
        return st.integers(min(values), max(values))
    if kinds == {float} and all(math.isfinite(v) for v in values):
        return st.floats(min(values), max(values), allow_nan=False)
    if kinds == {str}:
        alphabet = "".join(sorted(set("".join(values))))
        shortest, longest = min(map(len, values)), max(map(len, values))
        if not alphabet:
            return st.just("")
        low, high = _sizes(shortest, longest)
        return st.text(alphabet=alphabet, min_size=low, max_size=high)
    if kinds == {list}:
        items = [item for v in values for item in v]
        inner = _like(items, st, depth + 1) if items else None
        if inner is None:
            return None
        low, high = _sizes(min(map(len, values)), max(map(len, values)))
        return st.lists(inner, min_size=low, max_size=high)
    if kinds == {tuple} and len({len(v) for v in values}) == 1:
        parts = [_like([v[i] for v in values], st, depth + 1) for i in range(len(values[0]))]
        return None if any(p is None for p in parts) else st.tuples(*parts)
    return None


_MAX_DRAWN_SIZE = 40
"""Hypothesis cannot draw a list of thousands of items within its buffer: it would retry until
the CPU limit. Generated inputs stay small; the recorded calls cover the big ones."""


def _sizes(shortest: int, longest: int) -> tuple[int, int]:
    low = min(shortest, _MAX_DRAWN_SIZE // 4)
    return low, max(low, min(longest, _MAX_DRAWN_SIZE))


def _inferred_strategies(signature: Any, calls: list[dict[str, Any]], st: Any) -> dict[str, Any]:
    """Strategies per parameter from the recorded calls (unannotated functions); none at all
    when a parameter holds something other than numbers, strings, lists and tuples of them."""
    seen: dict[str, list[Any]] = {name: [] for name in signature.parameters}
    for call in calls:
        try:
            args, kwargs = pickle.loads(call["args"])
            bound = signature.bind(*args, **kwargs)
        except Exception:
            continue
        for name, value in bound.arguments.items():
            seen[name].append(value)
    strategies: dict[str, Any] = {}
    for name, values in seen.items():
        if not values:
            if signature.parameters[name].default is signature.parameters[name].empty:
                return {}
            continue  # never passed: keeps its default
        strategy = _like(values, st)
        if strategy is None:
            # Objects (``self`` included): copying them would touch their classes (copyreg
            # caches), which the harness's tamper check rightly reports. No generated inputs.
            return {}
        strategies[name] = strategy
    return strategies


def generated_inputs(
    original: Any, candidate: Any, config: dict[str, Any], calls: list[dict[str, Any]]
) -> list[str]:
    """Compare on inputs Hypothesis draws: from the type hints when every parameter is
    annotated, else shaped like the recorded calls' arguments (then inputs on which the
    original raises are skipped: they may lie outside what the function accepts)."""
    count = int(config.get("generated_examples", 0))
    if count <= 0:
        return []
    try:
        with _as(None):  # Hypothesis's own imports are nobody's side effects
            import typing

            from hypothesis import HealthCheck, given, settings
            from hypothesis import strategies as st
            from hypothesis.errors import HypothesisException
    except Exception:  # missing, or too new for this interpreter
        return []
    try:
        signature = inspect.signature(original)
        hints = typing.get_type_hints(original)
    except Exception:
        return []
    parameters = list(signature.parameters.values())
    if not parameters or any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
        return []
    inferred = any(p.name not in hints for p in parameters)
    try:
        # Nobody's side effects either: strategies resolve lazily, and resolving text
        # strategies makes Hypothesis build (and cache on disk) its Unicode tables, which the
        # audit would otherwise blame on whoever runs next (every ``str`` parameter was
        # "candidate tried to create the folder .hypothesis/tmp").
        with _as(None):
            if inferred:
                strategies = _inferred_strategies(signature, calls, st)
                if not strategies:
                    return []
            else:
                st.register_type_strategy(int, st.integers(-1000, 1000))
                strategies = {p.name: st.from_type(hints[p.name]) for p in parameters}
            for strategy in strategies.values():
                strategy.validate()
    except Exception:
        return []
    deadline = _perf_counter() + float(config.get("generated_seconds", 2.0))
    found: list[str] = []

    class _Enough(Exception):
        pass

    def check(**kwargs: Any) -> None:
        if _perf_counter() > deadline:
            raise _Enough
        # Positionally where the signature allows: a candidate may rename its parameters.
        args: list[Any] = []
        rest = dict(kwargs)
        for parameter in parameters:
            if parameter.kind is parameter.KEYWORD_ONLY or parameter.name not in rest:
                break
            args.append(rest.pop(parameter.name))
        first, second = copy.deepcopy((args, rest)), copy.deepcopy((args, rest))
        expected = invoke(original, *first, None)
        if inferred and expected.exc_name:
            return  # outside what the original accepts, perhaps: no evidence either way
        actual = invoke(candidate, *second, None)
        problem = _compare(expected, actual, config)
        if problem:
            found.append(f"generated input {_eq.short(kwargs, 120)}: {problem}")
            raise AssertionError(problem)

    runner = settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )(given(**strategies)(check))
    try:
        # Hypothesis's own machinery walks gc referrers and makes folders: only the calls of
        # original and candidate inside it are audited (``invoke``).
        with _as(None):
            runner()
    except _Enough:
        pass
    except AssertionError:
        pass
    except HypothesisException:
        return []
    except Exception:
        return found[-1:] or []
    return found[-1:]
