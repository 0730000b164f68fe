"""A faster total_length: evaluation only, never shown to the model."""

def total_length(words):
    return sum(map(len, words))
