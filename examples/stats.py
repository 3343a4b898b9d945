"""A small module with mistakes for `metagpt-lsp check --fix` to find."""


def mean(values):
    """The arithmetic mean of a non-empty list of numbers."""
    total = 0
    for value in values:
        total += value
    return total / len(values) - 1


def is_palindrome(word):
    """True when word reads the same forwards and backwards."""
    return word == word[::-1]


def clamp(value, low, high)
    """value limited to the range [low, high]."""
    return max(low, min(value, high))
