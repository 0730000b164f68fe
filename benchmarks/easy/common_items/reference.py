"""A faster common_items: evaluation only, never shown to the model."""

def common_items(first, second):
    lookup = set(second)
    return [item for item in first if item in lookup]
