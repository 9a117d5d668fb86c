"""Noise-control rules of the alert policy, driven by a fake clock (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.events import DriftEvent
from sinks.alerts_policy import AlertPolicy, Episode
from sinks.slack_blocks import message

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def alarm(segment: str, after: float = 0.3, trace: str = "t") -> DriftEvent:
    return DriftEvent(T0, segment, "adwin", "refusal", trace, 0.2, 0.05, 0.03, after, 300)


def policy(**kw: object) -> AlertPolicy:
    settings: dict[str, object] = {"digest_window": timedelta(0), "min_severity": "warning"}
    return AlertPolicy(**(settings | kw))  # type: ignore[arg-type]


def test_below_min_severity_is_recorded_not_posted() -> None:
    p = policy()
    p.observe([DriftEvent(T0, "s", "adwin", "judge", "t", 0.051, 0.05, 0.80, 0.79, 100)], T0)
    out = p.step(T0)
    assert out.notices == [] and [e.delivery for e in out.quiet] == ["below_severity"]


def test_explicit_resolve_sends_a_recovery_and_a_new_episode_can_open() -> None:
    p = policy(cooldown=timedelta(0))
    p.observe([alarm("s")], T0)
    assert [n.kind for n in p.step(T0).notices] == ["open"]
    assert p.resolve("s", "adwin", "refusal", T0 + timedelta(minutes=5))
    out = p.step(T0 + timedelta(minutes=5))
    assert [n.kind for n in out.notices] == ["recovery"]
    assert [e.segment for e in out.closed] == ["s"]
    p.observe([alarm("s", trace="t2")], T0 + timedelta(minutes=6))
    assert [n.kind for n in p.step(T0 + timedelta(minutes=6)).notices] == ["open"]


def test_many_recoveries_at_once_make_one_digest() -> None:
    p = policy(recover_after=timedelta(minutes=10), digest_threshold=3)
    p.observe([alarm(f"s{i}") for i in range(4)], T0)
    assert len(p.step(T0).notices) == 1  # the openings, as a digest
    out = p.step(T0 + timedelta(minutes=10))
    assert [(n.kind, n.of, len(n.episodes)) for n in out.notices] == [("digest", "recovery", 4)]
    assert "4 drift episodes recovered" in message(out.notices[0])["text"]


def test_restored_episode_whose_message_failed_is_announced_again() -> None:
    p = policy()
    failed = Episode("ep", "s", "adwin", "refusal", "critical", T0, T0, delivery="pending")
    kept = Episode("ep2", "s2", "adwin", "refusal", "critical", T0, T0, delivery="notified")
    p.restore([failed, kept], {("s2", "adwin"): T0})
    notices = p.step(T0 + timedelta(seconds=1)).notices
    assert [n.episodes[0].episode_id for n in notices] == ["ep"]
    assert message(notices[0])["blocks"][0]["type"] == "header"
