"""Slow dedupe (an easy task for the 135M model)."""

def dedupe(items):
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out
