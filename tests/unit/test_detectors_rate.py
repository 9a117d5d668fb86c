"""BernoulliCusum: calibrated run lengths, detection, checkpoints, one alarm per episode."""

import numpy as np
import pytest

from detectors.calibration import calibrated_chain
from detectors.rate import BernoulliCusum


def run_length(detector: BernoulliCusum, bits: np.ndarray) -> int:
    for i, b in enumerate(bits.tolist()):
        detector.update(b)
        if detector.drift_detected:
            return i + 1
    raise AssertionError("no alarm within the stream; make it longer")


@pytest.mark.parametrize(("ert", "p0"), [(500, 0.03), (500, 0.2), (2000, 0.05)])
def test_mean_run_length_without_change_is_the_configured_ert(ert: int, p0: float) -> None:
    rng = np.random.default_rng(ert + int(p0 * 100))
    runs = [run_length(BernoulliCusum(p0, ert=ert),
                       (rng.random(20 * ert) < p0).astype(float)) for _ in range(250)]
    assert abs(np.mean(runs) / ert - 1) < 0.25, np.mean(runs)


def test_the_markov_chain_arl_is_exact() -> None:
    chain, h = calibrated_chain(0.05, 0.10, 1000)
    # the smallest threshold reaching the ERT: one step lower falls short of it
    assert chain.arl(0.05, h) >= 1000 > chain.arl(0.05, h - 1)
    rng = np.random.default_rng(0)
    runs = [run_length(BernoulliCusum(0.05, ert=1000), (rng.random(30_000) < 0.05) * 1.0)
            for _ in range(300)]
    # standard error of a mean of 300 near-geometric run lengths is ~6 %
    assert abs(np.mean(runs) / chain.arl(0.05, h) - 1) < 0.15


@pytest.mark.parametrize(("p", "warmup", "ert"), [(0.031, 2000, 100_000), (0.03, 500, 2000)])
def test_a_warm_up_estimate_keeps_the_false_alarm_rate_at_the_ert(
        p: float, warmup: int, ert: int) -> None:
    # Segments whose reference rate comes from a warm-up: across them, false alarms per
    # update must be 1 / ERT. Exact: each warm-up count weighted by its binomial
    # probability, each segment's rate from its chain at the true rate.
    from scipy.stats import binom

    counts = np.arange(binom.ppf(1e-6, warmup, p), binom.ppf(1 - 1e-6, warmup, p) + 1)
    weights = binom.pmf(counts, warmup, p)
    rates: dict[str, list[float]] = {"estimate": [], "posterior": []}
    for ones in counts.astype(int).tolist():
        q0 = (ones + 0.5) / (warmup + 1)
        for mode, sample in (("estimate", None), ("posterior", (ones, warmup))):
            chain, h = calibrated_chain(q0, 2 * q0, ert, sample=sample)
            rates[mode].append(1 / chain.arl(p, h))
    run_length = {mode: 1 / float(weights @ r) for mode, r in rates.items()}
    assert abs(run_length["posterior"] / ert - 1) < 0.25, run_length
    # calibrated at the estimate alone, false alarms come 1.3-3x as often as configured
    assert run_length["estimate"] < 0.8 * ert, run_length


def test_the_detector_uses_its_warm_up_counts() -> None:
    rng = np.random.default_rng(12)
    bits = (rng.random(2000) < 0.03).astype(float).tolist()
    det = BernoulliCusum(ert=20_000, warmup=2000)
    for b in bits:
        det.update(b)
    ones = int(sum(bits))
    chain, h = calibrated_chain(det.p0, det.p1, 20_000, sample=(ones, 2000))
    assert det.threshold == h / chain.c
    assert h > calibrated_chain(det.p0, det.p1, 20_000)[1]  # the price of not knowing p0


def test_a_floored_warm_up_is_calibrated_at_the_floor() -> None:
    det = BernoulliCusum(ert=20_000, warmup=2000, min_p0=0.005)
    for _ in range(2000):
        det.update(0.0)  # no flag in the warm-up: the floor, not an estimate near 0
    chain, h = calibrated_chain(0.005, 0.01, 20_000)
    assert det.p0 == 0.005 and det.threshold == h / chain.c


def test_detects_a_doubling_of_the_rate_quickly() -> None:
    rng = np.random.default_rng(5)
    delays = []
    for _ in range(20):
        det = BernoulliCusum(0.05, ert=2000)
        bits = np.r_[rng.random(300) < 0.05, rng.random(3000) < 0.10].astype(float)
        alarm = run_length(det, bits) - 1
        if alarm >= 300:
            delays.append(alarm - 300)
    assert len(delays) >= 15  # a few false alarms before the change are expected
    assert np.median(delays) < 250, sorted(delays)


def test_warmup_estimates_the_reference_rate() -> None:
    rng = np.random.default_rng(2)
    det = BernoulliCusum(ert=2000, warmup=2000)
    for b in (rng.random(2000) < 0.08).tolist():
        det.update(b)
        assert not det.drift_detected
    assert det.calibrated and abs(det.p0 - 0.08) < 0.02


def test_direction_down_watches_a_falling_pass_rate() -> None:
    rng = np.random.default_rng(3)
    det = BernoulliCusum(0.90, ert=5000, ratio=1.5, direction="down")
    assert round(det.p0, 2) == 0.10  # it watches the failure rate
    scores = np.r_[rng.random(300) < 0.90, rng.random(8000) < 0.80].astype(float)
    assert 300 < run_length(det, scores) < 1500


def test_one_alarm_per_episode_and_rearm_after_acknowledge() -> None:
    rng = np.random.default_rng(4)
    det = BernoulliCusum(0.02, ert=1000)
    bits = (rng.random(5000) < 0.2).astype(float)
    alarms = []
    for i, b in enumerate(bits.tolist()):
        det.update(b)
        if det.drift_detected:
            alarms.append(i)
    assert len(alarms) == 1 and not det.armed
    assert det.statistic > det.threshold  # still visible while latched
    assert det.window > 0 and det.mean_after > 0.1 and det.mean_before == pytest.approx(0.02)
    det.acknowledge()
    assert det.armed and det.statistic == 0
    again = run_length(det, bits)
    assert again < 200  # the change persists, so a new episode opens soon


def test_set_reference_rearms_and_versions() -> None:
    det = BernoulliCusum(0.02, ert=1000)
    for _ in range(200):
        det.update(1.0)
    assert not det.armed
    old = det.reference_version
    det.set_reference(0.5)
    assert det.armed and det.reference_version != old and det.statistic == 0


def test_restored_state_continues_identically() -> None:
    rng = np.random.default_rng(6)
    bits = np.r_[rng.random(3000) < 0.05, rng.random(3000) < 0.12].astype(float).tolist()
    whole = BernoulliCusum(ert=1000, warmup=500)
    seen_whole = []
    for i, b in enumerate(bits):
        whole.update(b)
        if whole.drift_detected:
            seen_whole.append(i)
            whole.acknowledge()
        if i == 1499:
            resumed = BernoulliCusum.from_state(whole.state())
    seen_resumed = [i for i in seen_whole if i < 1500]
    for i, b in enumerate(bits[1500:], start=1500):
        resumed.update(b)
        if resumed.drift_detected:
            seen_resumed.append(i)
            resumed.acknowledge()
    assert seen_whole == seen_resumed and [i for i in seen_whole if i >= 3000]
    assert resumed.statistic == whole.statistic


def test_calibration_is_cheap() -> None:
    import time

    start = time.perf_counter()
    for p0 in (0.01, 0.05, 0.3):
        calibrated_chain(p0 * 1.001, min(2 * p0, 0.6), 9_999)  # fresh values: no cache
    assert time.perf_counter() - start < 10  # typically 0.1 s on one idle core
