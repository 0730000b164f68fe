from dataclasses import dataclass


@dataclass
class Item:
    name: str
    price: int
    quantity: int
