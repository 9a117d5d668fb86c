"""Which traces the judge and embedder see: deterministic, per segment, risk-boosted, and
inside a budget.

- Deterministic: a trace is in or out by a keyed hash of its ``trace_id`` alone, so every
  scorer, every worker and every replay make the same choice.
- A rate per segment (``rates``), else ``default_rate``.
- Risky traces (negative feedback, an error, a guardrail flag) are always sampled, and
  their rows record rate 1.0, so ``value / sample_rate`` stays an unbiased weight.
- A :class:`Budget` of judge calls per minute and dollars per UTC day that is never
  exceeded: a call must :meth:`Budget.acquire` its worst-case cost first and
  :meth:`Budget.settle` the real cost after.

>>> s = Sampler(default_rate=0.5, salt="demo")
>>> d = s.decide("trace-1", "bot|gpt")
>>> d == s.decide("trace-1", "bot|gpt"), d.rate
(True, 0.5)
>>> s.decide("trace-2", "bot|gpt", flagged=True)
Decision(sampled=True, rate=1.0, reason='risk:flag')
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_SCALE = float(1 << 64)


def salted(salt: str) -> Any:
    """The hash state :func:`unit_hash` starts from for ``salt``: build it once."""
    return hashlib.blake2b(digest_size=8, key=salt.encode()[:64])


def unit_hash(trace_id: str, salt: str = "", *, state: Any = None) -> float:
    """A uniform number in [0, 1) fixed by ``trace_id`` (and the salt, or ``state``, its
    :func:`salted` state, which spares rebuilding it per call).

    >>> unit_hash("abc") == unit_hash("abc", state=salted("")), 0.0 <= unit_hash("abc") < 1
    (True, True)
    """
    h = (salted(salt) if state is None else state).copy()
    h.update(trace_id.encode())
    return int.from_bytes(h.digest(), "big") / _SCALE


@dataclass(frozen=True, slots=True)
class Decision:
    sampled: bool
    #: the probability with which a trace like this one is sampled; store it on its rows
    rate: float
    reason: str


_RISK_FEEDBACK = Decision(True, 1.0, "risk:feedback")
_RISK_ERROR = Decision(True, 1.0, "risk:error")
_RISK_FLAG = Decision(True, 1.0, "risk:flag")


@dataclass
class Sampler:
    default_rate: float = 0.05
    rates: Mapping[str, float] = field(default_factory=dict)
    #: changing the salt re-draws the sample; keep it fixed for comparable replays
    salt: str = ""
    boost_negative_feedback: bool = True
    boost_errors: bool = True
    boost_flags: bool = True

    def __post_init__(self) -> None:
        for key, rate in {"default": self.default_rate, **self.rates}.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"sampling rate for {key} must be in [0, 1], got {rate}")
        self._salted = salted(self.salt)
        self._decisions: dict[tuple[bool, float], Decision] = {}

    def rate_for(self, segment: str) -> float:
        return self.rates.get(segment, self.default_rate)

    def decide(
        self,
        trace_id: str,
        segment: str,
        *,
        feedback: float | None = None,
        error: str | None = None,
        flagged: bool = False,
    ) -> Decision:
        # Runs on every trace: decisions are shared constants (a frozen dataclass costs a
        # microsecond to build) and the salt's hash state is built once.
        if self.boost_negative_feedback and feedback is not None and feedback < 0:
            return _RISK_FEEDBACK
        if self.boost_errors and error:
            return _RISK_ERROR
        if self.boost_flags and flagged:
            return _RISK_FLAG
        rate = self.rate_for(segment)
        sampled = unit_hash(trace_id, state=self._salted) < rate
        decision = self._decisions.get((sampled, rate))
        if decision is None:
            decision = self._decisions[(sampled, rate)] = Decision(sampled, rate, "rate")
        return decision


class Budget:
    """Judge calls per rolling minute and dollars per UTC day, never exceeded.

    Thread-safe, so one budget can be shared by the Faust agent and a batch job in one
    process. ``clock`` (monotonic seconds) and ``today`` are injectable for tests.

    >>> b = Budget(calls_per_minute=2, dollars_per_day=1.0, clock=lambda: 0.0)
    >>> b.acquire(0.4), b.acquire(0.4), b.acquire(0.1)
    (True, True, False)
    >>> b.settle(0.4, 0.1); b.spent_today
    0.1
    """

    def __init__(
        self,
        *,
        calls_per_minute: int,
        dollars_per_day: float,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], str] = lambda: datetime.now(UTC).date().isoformat(),
    ) -> None:
        self.calls_per_minute = calls_per_minute
        self.dollars_per_day = dollars_per_day
        self._clock = clock
        self._today = today
        self._calls: deque[float] = deque()
        self._day = today()
        self._spent = 0.0
        self._reserved = 0.0
        self._lock = threading.Lock()
        self.denied_calls = 0
        self.denied_dollars = 0

    def _roll_day(self) -> None:
        day = self._today()
        if day != self._day:
            self._day, self._spent = day, 0.0

    def acquire(self, max_cost_usd: float) -> bool:
        """Reserve one call and its worst-case cost; False (and nothing reserved) when
        either limit would be passed."""
        with self._lock:
            now = self._clock()
            while self._calls and now - self._calls[0] >= 60.0:
                self._calls.popleft()
            if len(self._calls) >= self.calls_per_minute:
                self.denied_calls += 1
                return False
            self._roll_day()
            if self._spent + self._reserved + max_cost_usd > self.dollars_per_day:
                self.denied_dollars += 1
                return False
            self._calls.append(now)
            self._reserved += max_cost_usd
            return True

    def settle(self, reserved_usd: float, actual_usd: float) -> None:
        """Turn a reservation into the real cost (which must not exceed it)."""
        with self._lock:
            self._reserved = max(0.0, self._reserved - reserved_usd)
            self._roll_day()
            self._spent += min(actual_usd, reserved_usd) if reserved_usd else actual_usd

    @property
    def spent_today(self) -> float:
        return round(self._spent, 12)
