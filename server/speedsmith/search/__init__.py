"""Search: spend a token budget on candidates with a strategy and keep the best verified one."""

from speedsmith.search.budget import BudgetSpec, resolve
from speedsmith.search.core import Attempt, SearchResult
from speedsmith.search.strategies import STRATEGIES, StrategyConfig, run_search

__all__ = [
    "STRATEGIES",
    "Attempt",
    "BudgetSpec",
    "SearchResult",
    "StrategyConfig",
    "resolve",
    "run_search",
]
