"""Slow common_items (an easy task for the 135M model)."""

def common_items(first, second):
    out = []
    for item in first:
        if item in second:
            out.append(item)
    return out
