"""A faster dedupe: evaluation only, never shown to the model."""

def dedupe(items):
    return list(dict.fromkeys(items))
