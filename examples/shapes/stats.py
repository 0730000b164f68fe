"""A small module with a slow function, for trying speedsmith."""


def sum_of_squares(nums):
    total = 0
    for i in range(len(nums)):
        total = total + nums[i] * nums[i]
    return total


def dedupe(items):
    seen = []
    out = []
    for item in items:
        if item not in seen:
            seen.append(item)
            out.append(item)
    return out
