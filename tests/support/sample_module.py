"""The Python module the editor-feature tests edit, review and fix: eleven small functions (one a stub) and a TODO
comment, over ``prompt_context.SMALL_FILE_BYTES`` so that prompts carry units, not the whole file."""

STATS = '''"""Statistics helpers for the nightly report: means, spreads, checksums and a text table."""

import math
import zlib
from collections import Counter


def mean(values):
    """The arithmetic mean of values; raises ValueError on an empty sequence."""
    if not values:
        raise ValueError("mean of an empty sequence")
    return sum(values) / len(values)


def median(values):
    """The middle value of the sorted values (the mean of the two middle ones for an even count)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def most_common(values):
    """The value seen most often, the first one seen on a tie."""
    counts = Counter(values)
    return counts.most_common(1)[0][0]


def stdev(values):
    """The sample standard deviation of values."""
    centre = mean(values)
    squares = sum((value - centre) ** 2 for value in values)
    return math.sqrt(squares / (len(values) - 1))


def checksum(data):
    """A CRC-32 of the data as eight hexadecimal digits."""
    return format(zlib.crc32(data) & 0xFFFFFFFF, "08x")


def render_table(rows):
    """Rows of (name, value) pairs as an aligned two-column text table."""
    width = max(len(name) for name, _value in rows)
    lines = [f"{name.ljust(width)}  {value:>10.3f}" for name, value in rows]
    return "\\n".join(lines)


def parse_header(line):
    """'key=value; key=value' as a dict, keys lower-cased and values stripped."""
    fields = {}
    for part in line.split(";"):
        key, _, value = part.partition("=")
        fields[key.strip().lower()] = value.strip()
    return fields


def histogram(values, buckets):
    """Counts of values in ``buckets`` equal-width bins between the smallest and the largest value."""
    low, high = min(values), max(values)
    width = (high - low) / buckets or 1
    counts = [0] * buckets
    for value in values:
        counts[min(int((value - low) / width), buckets - 1)] += 1
    return counts


def percentile(values, fraction):
    """The value below which ``fraction`` of the sorted values lie (nearest rank)."""
    ordered = sorted(values)
    rank = max(0, math.ceil(fraction * len(ordered)) - 1)
    return ordered[rank]


def moving_average(values, window):
    """Means of each run of ``window`` consecutive values."""
    sums = [sum(values[start:start + window]) for start in range(len(values) - window + 1)]
    return [total / window for total in sums]


def normalise(values):
    """Scale values linearly to the range 0..1."""
    pass


# TODO: a function that parses the footer line into a dict of totals
'''

SMALL_STATS = '''import math


def mean(xs):
    """The average of xs."""
    total = sum(xs)
    return total / len(xs)


def spread(xs):
    return max(xs) - min(xs)
'''
"""The small module the real-editor suites open: one function to review and fix, one to leave alone."""
