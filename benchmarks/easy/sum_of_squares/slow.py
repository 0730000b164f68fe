"""Slow sum_of_squares (an easy task for the 135M model)."""

def sum_of_squares(nums):
    total = 0
    for i in range(len(nums)):
        total = total + nums[i] * nums[i]
    return total
