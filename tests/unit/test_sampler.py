"""The sampler's rate, determinism and budget."""

from __future__ import annotations

import math
import threading

from pipeline.scorers.sampler import Budget, Sampler, unit_hash

N = 100_000


def _ids() -> list[str]:
    return [f"trace-{i:08d}" for i in range(N)]


def test_realised_rate_within_binomial_ci_and_repeatable() -> None:
    sampler = Sampler(default_rate=0.05, rates={"vip|gpt": 0.2}, salt="s1")
    for segment, rate in (("bot|gpt", 0.05), ("vip|gpt", 0.2)):
        chosen = [t for t in _ids() if sampler.decide(t, segment).sampled]
        # 99.9 % normal-approximation interval of a Binomial(N, rate) count
        half = 3.29 * math.sqrt(N * rate * (1 - rate))
        assert abs(len(chosen) - N * rate) <= half, (segment, len(chosen))
        again = [t for t in _ids() if Sampler(default_rate=0.05, rates={"vip|gpt": 0.2},
                                              salt="s1").decide(t, segment).sampled]
        assert again == chosen


def test_decisions_are_the_unit_hash_s_whatever_the_salt() -> None:
    # decide() hashes from a state built once per sampler: the same draws as per call
    for salt in ("", "s1", "x" * 100):
        sampler = Sampler(default_rate=0.3, salt=salt)
        for t in _ids()[:5_000]:
            assert sampler.decide(t, "s").sampled == (unit_hash(t, salt) < 0.3), (salt, t)


def test_lower_rate_samples_a_subset() -> None:
    low, high = Sampler(default_rate=0.01), Sampler(default_rate=0.1)
    ids = _ids()[:20_000]
    low_ids = {t for t in ids if low.decide(t, "s").sampled}
    assert low_ids <= {t for t in ids if high.decide(t, "s").sampled}


def test_risk_boosts_always_sample() -> None:
    sampler = Sampler(default_rate=0.0)
    assert sampler.decide("a", "s", feedback=-1.0).reason == "risk:feedback"
    assert sampler.decide("a", "s", error="timeout").sampled
    assert sampler.decide("a", "s", flagged=True).rate == 1.0
    assert not sampler.decide("a", "s", feedback=1.0).sampled


def test_budget_never_exceeded_under_a_threaded_burst() -> None:
    now = [0.0]
    budget = Budget(calls_per_minute=50, dollars_per_day=1.0, clock=lambda: now[0],
                    today=lambda: "2026-11-22")
    granted: list[float] = []
    lock = threading.Lock()

    def burst() -> None:
        for _ in range(200):
            if budget.acquire(0.01):
                with lock:
                    granted.append(now[0])
                budget.settle(0.01, 0.006)

    threads = [threading.Thread(target=burst) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 50  # 1,600 attempts in one minute, 50 allowed
    assert budget.denied_calls == 1_600 - 50

    # Minutes go by: calls refill, dollars run out and stay out for the day.
    total_calls = len(granted)
    for minute in range(1, 60):
        now[0] = minute * 60.0
        calls_this_minute = sum(budget.acquire(0.01) for _ in range(100))
        assert calls_this_minute <= 50
        for _ in range(calls_this_minute):
            budget.settle(0.01, 0.01)
        total_calls += calls_this_minute
        assert budget.spent_today <= 1.0
    assert budget.spent_today <= 1.0 and budget.denied_dollars > 0

    budget2_day = ["2026-11-22"]
    b2 = Budget(calls_per_minute=10, dollars_per_day=0.05, clock=lambda: now[0],
                today=lambda: budget2_day[0])
    assert sum(b2.acquire(0.02) for _ in range(10)) == 2
    budget2_day[0] = "2026-11-23"
    b2.settle(0.04, 0.04)  # a call that started yesterday lands today: counted today
    assert b2.spent_today == 0.04
