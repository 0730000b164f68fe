"""A faster squares: evaluation only, never shown to the model."""

def squares(nums):
    return [x * x for x in nums]
