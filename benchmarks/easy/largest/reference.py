"""A faster largest: evaluation only, never shown to the model."""

def largest(values):
    return max(values)
