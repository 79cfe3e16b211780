"""The largest values a spec may hold, shared by the parser and the tests that hold the CRDs to them.

Flagger sets no upper bounds, but the operator turns these numbers into timedeltas, datetimes and
loop counts, and an interval of `99999999999999999999s` or a threshold of 10**30 would only ever
overflow there, deep inside a tick, where nothing could name the field. The limits sit far above
anything a release needs, so `rollout validate` refuses such a value up front, naming the field and
the limit. The CRDs carry the same numbers as `maximum` (durations are strings there, so only the
parser bounds them).
"""

from __future__ import annotations

# analysis.interval, metrics[].interval, webhooks[].timeout and a GitSource's interval.
MAX_DURATION = 24 * 3600.0
# progressDeadlineSeconds: a week without progress.
MAX_PROGRESS_DEADLINE = 7 * 24 * 3600
# analysis.threshold (failed checks tolerated) and analysis.iterations.
MAX_THRESHOLD = 1000
MAX_ITERATIONS = 1000
# A BlueGreen's scaleDownDelaySeconds: the old version kept for at most a day.
MAX_SCALE_DOWN_DELAY = 24 * 3600
# compare.tolerance: the canary may be at most 100 times worse than the primary.
MAX_TOLERANCE = 100.0
# analysis.warmup.allowance: a canary may start at most 101 times worse than its tolerance allows.
MAX_WARMUP_ALLOWANCE = 100.0


def printable(value: int | float) -> bool:
    """Whether Python can write the number out: not an int of more than 4300 digits (YAML and JSON
    can carry one)."""
    try:
        str(value)
    except ValueError:
        return False
    return True


def show_number(value: int | float) -> str:
    """A number as an error message quotes it: `50`, `0.5`, `inf`, or `a 5000-digit number`."""
    if printable(value):
        return str(value)
    digits = int(abs(int(value)).bit_length() * 0.30103) + 1
    return f"a {digits}-digit number"
