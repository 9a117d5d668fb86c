"""Alert state in the ClickHouse ``alerts`` table, and example traces for a message.

One row per message (``alert_id``), rewritten as its delivery progresses; the newest
row wins (ReplacingMergeTree on ``updated_at``), so reading with FINAL gives the state.
At start-up the alerter reloads the open episodes and the last message per
(segment, detector) from here, so a restart neither re-sends nor forgets a cooldown.

Every call goes through ``run`` so that, with chdb, it runs on the writer's single
ClickHouse thread (``ClickHouseWriter.run_sync``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from clickhouse_connect.driver.client import Client

from sinks.alerts_policy import SEVERITIES, Episode, Notice
from sinks.slack_blocks import Example

T = TypeVar("T")
Runner = Callable[[Callable[[], Any]], Any]

ALERT_COLUMNS = (
    "alert_id", "episode_id", "kind", "segment", "detector", "signal", "severity", "status",
    "event_id", "opened_at", "closed_at", "sent_at", "attempts", "last_error", "summary",
    "episodes", "updated_at",
)
#: alerts.status of an episode's opening row -> Episode.delivery when reloaded
_RELOAD = {"sent": "notified", "digested": "notified", "failed": "pending",
           "pending": "pending", "suppressed": "suppressed",
           "below_severity": "below_severity"}


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _direct(fn: Callable[[], Any]) -> Any:
    return fn()


def episode_row(episode: Episode, status: str, *, now: datetime, alert_id: str | None = None,
                attempts: int = 0, error: str = "", payload: dict[str, Any] | None = None,
                sent_at: datetime | None = None) -> list[Any]:
    """The row of an episode's opening (status = how it was or was not announced)."""
    return [
        alert_id or f"open:{episode.episode_id}", episode.episode_id, "open", episode.segment,
        episode.detector, episode.signal, episode.severity, status,
        episode.first.event_id if episode.first else "", episode.opened_at, episode.closed_at,
        sent_at, attempts, error[:1000], json.dumps(payload) if payload else "", [], now,
    ]


def notice_row(notice: Notice, status: str, *, now: datetime, attempts: int, error: str,
               payload: dict[str, Any], sent_at: datetime | None) -> list[Any]:
    """The row of a recovery or digest message."""
    first = notice.episodes[0]
    single = notice.kind != "digest"
    return [
        notice.alert_id, first.episode_id if single else "", notice.kind,
        first.segment if single else "", first.detector if single else "",
        first.signal if single else "", notice.severity, status, "",
        min(e.opened_at for e in notice.episodes), first.closed_at if single else None,
        sent_at, attempts, error[:1000], json.dumps(payload),
        [e.episode_id for e in notice.episodes], now,
    ]


class ClickHouseAlertStore:
    def __init__(self, client: Client, run: Runner = _direct) -> None:
        self.client = client
        self.run = run

    def save(self, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.run(lambda: self.client.insert("alerts", list(rows),
                                                column_names=list(ALERT_COLUMNS)))

    def load(self) -> tuple[list[Episode], dict[tuple[str, str], datetime]]:
        """Open episodes (to keep, or to announce if their message failed) and, per
        (segment, detector), the last message sent, for cooldowns."""
        open_rows = self.run(lambda: self.client.query(
            "SELECT episode_id, segment, detector, signal, severity, status, opened_at, "
            "updated_at FROM alerts FINAL WHERE kind = 'open' AND closed_at IS NULL"
        ).result_rows)
        episodes = []
        for eid, segment, detector, signal, severity, status, opened_at, updated_at in open_rows:
            if severity not in SEVERITIES:
                continue
            episodes.append(Episode(
                eid, segment, detector, signal, severity=severity,
                opened_at=_utc(opened_at) or datetime.now(UTC),
                last_alarm_at=_utc(updated_at) or datetime.now(UTC),
                delivery=_RELOAD.get(status, "pending")))
        sent_rows = self.run(lambda: self.client.query(
            "SELECT segment, detector, max(sent_at) FROM alerts FINAL "
            "WHERE kind = 'open' AND sent_at IS NOT NULL GROUP BY segment, detector"
        ).result_rows)
        last = {(s, d): at for s, d, at in ((s, d, _utc(a)) for s, d, a in sent_rows)
                if at is not None}
        return episodes, last

    def examples(self, episode: Episode, limit: int = 3) -> list[Example]:
        """The traces that show the drift best: near the alarms, the most extreme values
        of the signal in the direction it moved, newest first among equals."""
        event = episode.last or episode.first
        if event is None:
            return []
        order = "DESC" if event.mean_after >= event.mean_before else "ASC"
        since = (episode.first or event).detected_at
        params = {"segment": episode.segment, "signal": episode.signal,
                  "since": since, "until": event.detected_at, "limit": limit}
        rows = self.run(lambda: self.client.query(
            "SELECT s.trace_id, s.value, substring(t.output, 1, 200) "
            "FROM (SELECT trace_id, value, ts FROM scores_all "
            "      WHERE segment = {segment:String} AND isFinite(value) "
            "        AND (name = {signal:String} OR scorer = {signal:String}) "
            "        AND ts BETWEEN {since:DateTime64(3)} - INTERVAL 1 HOUR "
            "                   AND {until:DateTime64(3)} + INTERVAL 5 MINUTE "
            f"      ORDER BY value {order}, ts DESC LIMIT {{limit:UInt32}}) AS s "
            "LEFT JOIN (SELECT trace_id, output FROM traces "
            "           WHERE segment = {segment:String} "
            "             AND ts >= {since:DateTime64(3)} - INTERVAL 1 HOUR "
            "           LIMIT 1 BY trace_id) AS t "
            "  ON t.trace_id = s.trace_id "
            f"ORDER BY s.value {order}, s.ts DESC "
            # Replays share ts, hence the day partition: FINAL per partition is exact.
            "SETTINGS do_not_merge_across_partitions_select_final = 1",
            parameters=params).result_rows)
        return [Example(str(tid), float(value), str(excerpt or "")) for tid, value, excerpt
                in rows]
