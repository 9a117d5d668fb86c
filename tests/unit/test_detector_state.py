"""Checkpoints: every detector restored from its snapshot continues exactly as if never stopped.

Each stream is cut at several points, including inside a warm-up (the detector is still
building its reference) and inside an open alarm episode (latched, not yet acknowledged).
The restored detector must raise the same alarms at the same updates, with the same
statistic, as the one that ran straight through.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np
import pytest

from detectors.adwin import Adwin
from detectors.embedding import EmbeddingDrift
from detectors.rate import BernoulliCusum
from detectors.registry import SegmentRegistry

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def run(det: Any, stream: Any, start: int = 0, ack_every: int = 0,
        pending: int = -1) -> tuple[list[tuple[int, float]], int]:
    """(update index, statistic) at every alarm; episodes acknowledged ``ack_every``
    updates later, so some cuts fall inside an open episode. Returns the alarms and the
    update at which the open episode will be acknowledged (-1: none open)."""
    out = []
    for i, x in enumerate(stream, start=start):
        det.update(x)
        if det.drift_detected:
            out.append((i, round(float(det.statistic), 9)))
            pending = i + ack_every
        if pending == i and hasattr(det, "acknowledge"):
            det.acknowledge()
            pending = -1
    return out, pending


def resumed(make: Callable[[], Any], stream: Any, cut: int,
            ack_every: int) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    straight, _ = run(make(), stream, ack_every=ack_every)
    first = make()
    before, pending = run(first, stream[:cut], ack_every=ack_every)
    restored = type(first).from_state(first.state())
    after, _ = run(restored, stream[cut:], start=cut, ack_every=ack_every, pending=pending)
    return straight, before + after


def flags(seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return np.r_[rng.random(3000) < 0.05, rng.random(3000) < 0.15].astype(float).tolist()


def scores(seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return np.clip(np.r_[rng.normal(0.7, 0.1, 3000), rng.normal(0.55, 0.1, 3000)], 0, 1).tolist()


def embeddings(seed: int, change: bool = True) -> np.ndarray:
    """4,000 vectors of one world (seed 0's basis); from update 2,500 on, 20 % of them
    from a new topic (with ``change``)."""
    basis = np.random.default_rng(0).normal(size=(6, 32))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(4000, 6)) @ basis + 0.5 * rng.normal(size=(4000, 32))
    if change:
        topic = np.random.default_rng(1).normal(size=32) * 2
        late = np.flatnonzero((np.arange(4000) >= 2500) & (rng.random(4000) < 0.2))
        x[late] = topic + 0.5 * rng.normal(size=(len(late), 32))
    return x


REFERENCE = embeddings(99, change=False)[:1000]


CASES = {
    "bernoulli_cusum": (partial(BernoulliCusum, 0.05, ert=500), flags),
    "bernoulli_cusum_warmup": (partial(BernoulliCusum, ert=500, warmup=800), flags),
    "adwin": (Adwin, scores),
    "embedding": (lambda: EmbeddingDrift(REFERENCE, ert=300, seed=1), embeddings),
    "embedding_cells": (lambda: EmbeddingDrift(REFERENCE, ert=300, cells=8), embeddings),
    "embedding_warmup": (partial(EmbeddingDrift, ert=300, warmup=600), embeddings),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("cut", [300, 1700, 2600])
def test_a_restored_detector_raises_the_same_alarms(name: str, cut: int) -> None:
    make, data = CASES[name]
    stream = data(7)
    straight, resumed_alarms = resumed(make, stream, cut, ack_every=40)
    assert straight == resumed_alarms
    assert any(i >= 2500 for i, _ in straight), straight  # the change was seen at all


def test_a_cut_inside_an_open_episode_stays_latched() -> None:
    det = BernoulliCusum(0.05, ert=500)
    bits = flags(3)
    first = run(BernoulliCusum(0.05, ert=500), bits)[0][0][0]
    for b in bits[: first + 1]:
        det.update(b)
    assert det.drift_detected and not det.armed
    clone = BernoulliCusum.from_state(det.state())
    assert not clone.armed and clone.alarm_at == det.alarm_at
    clone.update(1.0)
    assert not clone.drift_detected  # no repeat alarm for the same episode


def test_a_restored_segment_keeps_every_detector_warm() -> None:
    """The registry's snapshots (what the changelog stores, one per segment and signal)
    bring all of a segment's detectors back and the events continue identically."""
    factories: dict[str, Callable[[], Any]] = {
        "flag": partial(BernoulliCusum, 0.05, ert=500),
        "judge": Adwin,
        "embedding": lambda: EmbeddingDrift(REFERENCE, ert=300),
    }
    f, s, e = flags(11), scores(12), embeddings(13)

    def feed(reg: SegmentRegistry, lo: int, hi: int) -> list[tuple[int, str, str]]:
        out = []
        for i in range(lo, hi):
            for signal, value in (("flag", f[i]), ("judge", s[i]), ("embedding", e[i])):
                ev = reg.update("app|m", signal, value, trace_id=f"t{i}", ts=NOW)
                if ev is not None:
                    out.append((i, signal, ev.details.get("channel", "")))
                    reg.acknowledge("app|m", signal)
        return out

    straight = SegmentRegistry(factories)
    expected = feed(straight, 0, 4000)
    first = SegmentRegistry(factories)
    got = feed(first, 0, 2000)
    saved = {(seg, sig): blob for seg, sig, blob in first.take_dirty(["app|m"])}
    second = SegmentRegistry(factories, loader=lambda seg, sig: saved.get((seg, sig)))
    got += feed(second, 2000, 4000)
    assert second.restored == 1
    assert got == expected
    assert {signal for i, signal, _ in expected if i >= 2000} == {"flag", "judge", "embedding"}
