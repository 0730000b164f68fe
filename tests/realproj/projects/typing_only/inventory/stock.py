from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from inventory.models import Item


def total_value(items: Iterable[Item]) -> int:
    total = 0
    for item in items:
        total = total + item.price * item.quantity
    return total
