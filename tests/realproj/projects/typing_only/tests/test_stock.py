from inventory.models import Item
from inventory.stock import total_value


def test_total():
    assert total_value([Item("a", 2, 3), Item("b", 5, 1)]) == 11
    assert total_value([]) == 0
