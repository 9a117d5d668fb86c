"""Cheap per-trace signals computed on every trace (the heuristic scorers start here)."""

from __future__ import annotations

import re

# Openings that models use to decline; matched on the start of the answer only, where
# refusals sit, so a polite apology inside a helpful answer does not count.
_REFUSAL = re.compile(
    r"""^\W*(?:
        (?:i'?m|i\ am)\ (?:sorry|afraid|unable|not\ able)
      | sorry,?\ (?:but\ )?i\ (?:can(?:'?t|not)|won'?t|am\ unable)
      | i\ (?:can(?:'?t|not)|won'?t|will\ not|must\ decline|do\ not\ have\ access)
      | unfortunately,?\ i\ (?:can(?:'?t|not)|am\ unable)
      | as\ an\ ai\b
      | i\ apologi[sz]e,?\ but
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_HEAD = 160


def refusal(output: str) -> float:
    """1.0 when the answer opens with a refusal, else 0.0.

    >>> refusal("I'm sorry, but I can't help with that request.")
    1.0
    >>> refusal("Your card should arrive within 5 working days. Sorry for the wait!")
    0.0
    """
    return 1.0 if _REFUSAL.match(output[:_HEAD]) else 0.0


def length_ratio(input_text: str, output: str) -> float:
    """Output characters per input character (an empty input counts as one character).

    >>> length_ratio("abcd", "abcdefgh")
    2.0
    """
    return len(output) / max(len(input_text), 1)
