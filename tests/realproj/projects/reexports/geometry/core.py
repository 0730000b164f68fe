__all__ = ["area"]


def area(width, height):
    total = 0
    for _ in range(height):
        total += width
    return total
