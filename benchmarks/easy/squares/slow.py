"""Slow squares (an easy task for the 135M model)."""

def squares(nums):
    out = []
    for i in range(len(nums)):
        out.append(nums[i] * nums[i])
    return out
