"""ADWIN's false alarms and detection delay on Bernoulli streams where the answer is known."""

import random

from detectors.adwin import Adwin


def bernoulli(rng: random.Random, p: float) -> float:
    return 1.0 if rng.random() < p else 0.0


def test_no_false_alarm_on_100k_stationary_updates() -> None:
    alarms = 0
    for seed in range(5):
        rng = random.Random(seed)
        detector = Adwin()
        for _ in range(20_000):
            detector.update(bernoulli(rng, 0.05))
            alarms += detector.drift_detected
    assert alarms == 0


def test_detects_a_jump_soon_after_it_happens() -> None:
    delays = []
    for seed in range(10):
        rng = random.Random(100 + seed)
        detector = Adwin()
        for i in range(6_000):
            detector.update(bernoulli(rng, 0.05 if i < 3_000 else 0.25))
            if detector.drift_detected:
                delays.append(i - 3_000)
                break
    assert len(delays) == 10
    assert all(0 <= d <= 400 for d in delays), delays
    assert sorted(delays)[5] <= 200


def test_restored_state_continues_identically() -> None:
    rng = random.Random(3)
    values = [bernoulli(rng, 0.05 if i < 2_000 else 0.4) for i in range(4_000)]
    whole, first = Adwin(), Adwin()
    for v in values[:1_000]:
        whole.update(v)
        first.update(v)
    resumed = Adwin.from_state(first.state())
    alarms_whole, alarms_resumed = [], []
    for i, v in enumerate(values[1_000:]):
        whole.update(v)
        resumed.update(v)
        if whole.drift_detected:
            alarms_whole.append(i)
        if resumed.drift_detected:
            alarms_resumed.append(i)
    assert alarms_whole == alarms_resumed
    assert alarms_whole
