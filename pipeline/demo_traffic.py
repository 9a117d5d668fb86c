"""Demo and test traffic: real BANKING77 customer queries with generated assistant answers.

A scenario names the segments, how many traces, and optionally one segment whose
refusal rate jumps part-way (a new model version that declines far more often).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources

import orjson

DATA = resources.files("pipeline") / "data" / "banking77"

_OPENERS = (
    "Thanks for getting in touch about {topic}.",
    "I can help with {topic}.",
    "Happy to help you with {topic}.",
    "Here is what you need to know about {topic}.",
)
_STEPS = (
    "Open the app and go to the Cards tab, then select the card in question.",
    "You can check the current status under Account > Activity.",
    "Most requests like this are resolved within 2 working days.",
    "If you have already tried this, please contact support through the in-app chat.",
    "For your security we will never ask for your full card number or PIN.",
    "Fees, if any, are shown before you confirm, so nothing is charged without notice.",
    "You will receive a notification as soon as the change has gone through.",
    "Top-ups by bank transfer can take up to one working day to appear.",
)
_REFUSALS = (
    "I'm sorry, but I can't help with that request.",
    "I am unable to assist with account-specific questions.",
    "Sorry, I cannot provide information about that topic.",
    "I can't help with that. Please contact your bank directly.",
)


@dataclass(frozen=True, slots=True)
class Segment:
    app: str
    model: str

    @property
    def key(self) -> str:
        return f"{self.app}|{self.model}"


DEFAULT_SEGMENTS = (
    Segment("support-bot", "gpt-4o-mini"),
    Segment("support-bot", "llama-3.1-8b"),
    Segment("card-assistant", "gpt-4o-mini"),
    Segment("card-assistant", "claude-haiku"),
)


#: time between two consecutive traces' timestamps
SPACING = timedelta(milliseconds=150)


@dataclass(frozen=True, slots=True)
class Scenario:
    n: int = 20_000
    segments: tuple[Segment, ...] = DEFAULT_SEGMENTS
    base_refusal: float = 0.03
    drift_segment: Segment | None = DEFAULT_SEGMENTS[1]
    drift_at: float = 0.5
    drifted_refusal: float = 0.30
    #: one message in this many is invalid (0: none); kinds cycle
    invalid_every: int = 0
    seed: int = 7
    #: the first trace's timestamp; default an hour ago, or earlier when the stream would
    #: otherwise end in the future (from an hour ago, a stream of more than ~600,000
    #: traces runs past the contract's ``max_future_skew``, a day, and its tail is
    #: dead-lettered)
    start: datetime = None  # type: ignore[assignment]  # set in __post_init__
    run_id: str = "demo"

    def __post_init__(self) -> None:
        if self.start is None:
            now = datetime.now(UTC)
            start = min(now - timedelta(hours=1), now - SPACING * self.n)
            object.__setattr__(self, "start", start)  # frozen

    def timestamp(self, i: int) -> datetime:
        """The ``i``-th trace's timestamp."""
        return self.start + SPACING * i


@cache
def queries() -> list[tuple[str, str]]:
    """(text, intent) for all 13,083 BANKING77 queries, train then test."""
    rows: list[tuple[str, str]] = []
    for name in ("train.csv", "test.csv"):
        with (DATA / name).open(encoding="utf-8") as fh:
            rows.extend((r["text"], r["category"]) for r in csv.DictReader(fh))
    return rows


def answer(rng: random.Random, intent: str, *, short: bool = False) -> str:
    topic = intent.replace("_", " ")
    steps = rng.sample(_STEPS, 1 if short else rng.randint(2, 4))
    return " ".join([rng.choice(_OPENERS).format(topic=topic), *steps])


_INVALID = (
    b'{"trace_id": "broken", "timestamp": ',                         # truncated JSON
    b'["not", "an", "object"]',                                       # wrong top-level type
    b'{"trace_id": "x", "timestamp": 1700000000000, "input": "hi"}',  # no output
    b'{"trace_id": "y", "timestamp": "yesterday", "input": "a", "output": "b"}',
    b"\xff\xfe binary garbage",
)


def generate(s: Scenario) -> Iterator[tuple[bytes | None, bytes]]:
    """(Kafka key, value) pairs; the key is the segment, as producers are asked to do."""
    rng = random.Random(s.seed)
    pool = queries()
    drift_from = int(s.n * s.drift_at)
    invalid = 0
    for i in range(s.n):
        seg = s.segments[i % len(s.segments)]
        drifted = seg == s.drift_segment and i >= drift_from
        text, intent = pool[rng.randrange(len(pool))]
        refuses = rng.random() < (s.drifted_refusal if drifted else s.base_refusal)
        output = rng.choice(_REFUSALS) if refuses else answer(rng, intent, short=drifted)
        trace = {
            "trace_id": f"{s.run_id}-{i:08d}",
            "timestamp": s.timestamp(i).isoformat(),
            "app": seg.app,
            "model": seg.model,
            "model_version": "2026-11" if drifted else "2026-10",
            "route": intent,
            "input": [{"role": "user", "content": text}],
            "output": output,
            "latency_ms": round(rng.lognormvariate(6.5, 0.4), 1),
            "input_tokens": len(text) // 4 + 20,
            "output_tokens": len(output) // 4,
            "metadata": {"intent": intent, "source": "banking77"},
        }
        yield seg.key.encode(), orjson.dumps(trace)
        if s.invalid_every and i % s.invalid_every == s.invalid_every - 1:
            yield seg.key.encode(), _INVALID[invalid % len(_INVALID)]
            invalid += 1


def count_invalid(s: Scenario) -> int:
    return s.n // s.invalid_every if s.invalid_every else 0
