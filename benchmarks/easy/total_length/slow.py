"""Slow total_length (an easy task for the 135M model)."""

def total_length(words):
    total = 0
    for i in range(len(words)):
        total = total + len(words[i])
    return total
