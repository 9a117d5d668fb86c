"""Noise control for drift alerts: episodes, severity, cooldown, digests, recoveries.

Pure and clock-driven (no I/O), so every rule is tested without Slack or ClickHouse.

- An *episode* is one drift of one (segment, detector, signal): it opens with the first
  alarm, absorbs later alarms, and recovers after ``recover_after`` without an alarm
  (or when :meth:`AlertPolicy.resolve` is called). One message opens it, one closes it.
- A *cooldown* per (segment, detector): an episode opening within ``cooldown`` of the
  last message for that pair is recorded but not posted (a flapping detector).
- *Severity* from how far the signal moved and how far the statistic passed its
  threshold; episodes below ``min_severity`` are recorded, not posted.
- New openings wait ``digest_window`` seconds; when ``digest_threshold`` or more are
  waiting, they go out as one *digest* (a model roll-out that moves every segment
  is one message, not twenty). Recoveries are batched the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from schemas.events import DriftEvent

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
NoticeKind = Literal["open", "recovery", "digest"]


def classify(event: DriftEvent) -> Severity:
    """critical: the signal at least doubled (or halved to zero) or the statistic is 3x
    its threshold; warning: moved 25 % or 1.5x the threshold; info otherwise."""
    before, after = event.mean_before, event.mean_after
    change = abs(after - before) / max(abs(before), 0.01)
    over = event.statistic / event.threshold if event.threshold > 0 else 0.0
    if change >= 1.0 or over >= 3.0:
        return "critical"
    if change >= 0.25 or over >= 1.5:
        return "warning"
    return "info"


def episode_id(segment: str, detector: str, signal: str, first_event_id: str) -> str:
    key = "\x1f".join((segment, detector, signal, first_event_id))
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


@dataclass(slots=True)
class Episode:
    episode_id: str
    segment: str
    detector: str
    signal: str
    severity: Severity
    #: wall-clock time the episode was opened here (cooldowns and recovery use it)
    opened_at: datetime
    last_alarm_at: datetime
    #: the alarms themselves (their detected_at is trace time: "since when")
    first: DriftEvent | None = None
    last: DriftEvent | None = None
    alarms: int = 1
    #: "pending" until released, then "notified" | "suppressed" | "below_severity"
    delivery: str = "pending"
    closed_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.segment, self.detector, self.signal)


@dataclass(slots=True)
class Notice:
    """One message to post: an opening, a recovery, or a digest of several."""

    kind: NoticeKind
    episodes: list[Episode]
    #: for a digest: what it gathers, "open" or "recovery"
    of: Literal["open", "recovery"] = "open"

    @property
    def alert_id(self) -> str:
        if self.kind != "digest":
            return f"{self.kind}:{self.episodes[0].episode_id}"
        ids = "\x1f".join(sorted(e.episode_id for e in self.episodes))
        return f"digest-{self.of}:" + hashlib.blake2b(ids.encode(), digest_size=12).hexdigest()

    @property
    def severity(self) -> Severity:
        return max((e.severity for e in self.episodes), key=SEVERITIES.index)


@dataclass(slots=True)
class Decisions:
    """What one step decided: messages to post, and episodes recorded without a message."""

    notices: list[Notice] = field(default_factory=list)
    quiet: list[Episode] = field(default_factory=list)
    #: episodes that ended (announced or not), to record their end
    closed: list[Episode] = field(default_factory=list)


class AlertPolicy:
    def __init__(
        self,
        *,
        cooldown: timedelta = timedelta(minutes=30),
        recover_after: timedelta = timedelta(minutes=30),
        digest_window: timedelta = timedelta(seconds=10),
        digest_threshold: int = 5,
        min_severity: Severity = "warning",
        severity: Callable[[DriftEvent], Severity] = classify,
    ) -> None:
        self.cooldown = cooldown
        self.recover_after = recover_after
        self.digest_window = digest_window
        self.digest_threshold = digest_threshold
        self.min_severity = min_severity
        self.severity = severity
        self.open: dict[tuple[str, str, str], Episode] = {}
        #: (segment, detector) -> when a message about it was last posted
        self.last_notified: dict[tuple[str, str], datetime] = {}
        self._opening: list[Episode] = []
        self._recovering: list[Episode] = []
        self._closed: list[Episode] = []

    def restore(self, episodes: Iterable[Episode],
                last_notified: dict[tuple[str, str], datetime]) -> None:
        """State reloaded from the alerts table after a restart."""
        for episode in episodes:
            self.open[episode.key] = episode
            if episode.delivery == "pending":  # its message never went out: try again
                self._opening.append(episode)
        for pair, at in last_notified.items():
            if pair not in self.last_notified or at > self.last_notified[pair]:
                self.last_notified[pair] = at

    def observe(self, events: Iterable[DriftEvent], now: datetime) -> list[Episode]:
        """Fold alarms into episodes; returns the episodes opened now."""
        opened = []
        for event in events:
            key = (event.segment, event.detector, event.signal)
            severity = self.severity(event)
            episode = self.open.get(key)
            if episode is not None:
                episode.alarms += 1
                episode.last_alarm_at = now
                episode.last = event
                if SEVERITIES.index(severity) > SEVERITIES.index(episode.severity):
                    episode.severity = severity
                continue
            episode = Episode(
                episode_id(*key, event.event_id), *key, severity=severity, opened_at=now,
                last_alarm_at=now, first=event, last=event)
            self.open[key] = episode
            self._opening.append(episode)
            opened.append(episode)
        return opened

    def resolve(self, segment: str, detector: str, signal: str, now: datetime) -> bool:
        """Close an episode now (a detector saw the signal return); False if none open."""
        episode = self.open.pop((segment, detector, signal), None)
        if episode is None:
            return False
        self._close(episode, now)
        return True

    def step(self, now: datetime) -> Decisions:
        """Close quiet episodes and release what has waited ``digest_window``."""
        for key, episode in list(self.open.items()):
            if episode.delivery != "pending" and now - episode.last_alarm_at >= self.recover_after:
                del self.open[key]
                self._close(episode, now)
            elif episode.delivery == "suppressed" and episode.closed_at is None:
                # Still drifting after the cooldown that hid it: announce it after all.
                last = self.last_notified.get((episode.segment, episode.detector))
                if last is None or now - last >= self.cooldown:
                    episode.delivery = "pending"
                    self._opening.append(episode)
        out = Decisions()
        out.closed, self._closed = self._closed, []
        self._release_openings(now, out)
        self._release_recoveries(now, out)
        return out

    def _close(self, episode: Episode, now: datetime) -> None:
        episode.closed_at = now
        self._closed.append(episode)
        if episode in self._opening:  # closed before it was ever announced
            self._opening.remove(episode)
            episode.delivery = "suppressed"
        if episode.delivery == "notified":
            self._recovering.append(episode)

    def _due(self, waiting: list[Episode], now: datetime, at: Callable[[Episode], datetime]
             ) -> bool:
        return bool(waiting) and now - min(at(e) for e in waiting) >= self.digest_window

    def _release_openings(self, now: datetime, out: Decisions) -> None:
        if not self._due(self._opening, now, lambda e: e.opened_at):
            return
        waiting, self._opening = self._opening, []
        post = []
        for episode in waiting:
            last = self.last_notified.get((episode.segment, episode.detector))
            if SEVERITIES.index(episode.severity) < SEVERITIES.index(self.min_severity):
                episode.delivery = "below_severity"
                out.quiet.append(episode)
            elif last is not None and now - last < self.cooldown:
                episode.delivery = "suppressed"
                out.quiet.append(episode)
            else:
                episode.delivery = "notified"
                self.last_notified[(episode.segment, episode.detector)] = now
                post.append(episode)
        out.notices.extend(self._group(post, "open"))

    def _release_recoveries(self, now: datetime, out: Decisions) -> None:
        if not self._due(self._recovering, now, lambda e: e.closed_at or now):
            return
        waiting, self._recovering = self._recovering, []
        out.notices.extend(self._group(waiting, "recovery"))

    def _group(self, episodes: list[Episode], kind: Literal["open", "recovery"]) -> list[Notice]:
        if len(episodes) >= self.digest_threshold:
            return [Notice("digest", episodes, of=kind)]
        return [Notice(kind, [e]) for e in episodes]
