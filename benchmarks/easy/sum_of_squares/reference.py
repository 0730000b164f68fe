"""A faster sum_of_squares: evaluation only, never shown to the model."""

def sum_of_squares(nums):
    return sum(x * x for x in nums)
