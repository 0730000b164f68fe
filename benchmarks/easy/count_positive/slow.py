"""Slow count_positive (an easy task for the 135M model)."""

def count_positive(values):
    count = 0
    for i in range(len(values)):
        if values[i] > 0:
            count = count + 1
    return count
