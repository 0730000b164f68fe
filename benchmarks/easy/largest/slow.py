"""Slow largest (an easy task for the 135M model)."""

def largest(values):
    best = values[0]
    for i in range(1, len(values)):
        if values[i] > best:
            best = values[i]
    return best
