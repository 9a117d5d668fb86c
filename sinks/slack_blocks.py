"""Block Kit messages for drift alerts: what drifted, how much, since when, examples, SQL.

Slack limits respected here: header text <= 150 characters, section text <= 3000,
at most 50 blocks per message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sinks.alerts_policy import Episode, Notice

EMOJI = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}
DIGEST_LINES = 20


@dataclass(frozen=True, slots=True)
class Example:
    """A trace that shows the drift: its id, the signal's value, and an excerpt."""

    trace_id: str
    value: float
    excerpt: str = ""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ts(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "-"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def dig_in_sql(episode: Episode) -> str:
    """The query to paste into ``driftline sql``: the signal around the first alarm."""
    since = episode.first.detected_at if episode.first else episode.opened_at
    return (
        "SELECT toStartOfFifteenMinutes(ts) AS t, count() AS n, round(avg(value), 4) AS mean\n"
        "FROM scores_all\n"
        f"WHERE segment = '{_quote(episode.segment)}'\n"
        f"  AND (name = '{_quote(episode.signal)}' OR scorer = '{_quote(episode.signal)}')\n"
        f"  AND ts >= toDateTime64('{since:%Y-%m-%d %H:%M:%S}', 3, 'UTC') - INTERVAL 6 HOUR\n"
        "GROUP BY t ORDER BY t\n"
        "SETTINGS do_not_merge_across_partitions_select_final = 1"
    )


def _change(episode: Episode) -> str:
    event = episode.last or episode.first
    if event is None:
        return "-"
    before, after = event.mean_before, event.mean_after
    rel = f" ({(after - before) / abs(before):+.0%})" if before else ""
    return f"{before:.4g} → {after:.4g}{rel}"


def _statistic(episode: Episode) -> str:
    event = episode.last or episode.first
    if event is None:
        return "-"
    return f"{event.statistic:.4g} vs threshold {event.threshold:.4g} (window {event.window})"


def _text(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, 3000)}}


def opening(episode: Episode, examples: Sequence[Example]) -> dict[str, Any]:
    title = f"Drift: {episode.signal} in {episode.segment}"
    fields = [
        ("Segment", f"`{episode.segment}`"),
        ("Detector · signal", f"{episode.detector} · {episode.signal}"),
        ("Severity", f"{EMOJI[episode.severity]} {episode.severity}"),
        ("Since", _ts(episode.first.detected_at if episode.first else episode.opened_at)),
        ("Before → after", _change(episode)),
        ("Statistic", _statistic(episode)),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text",
                                    "text": _cut(f"{EMOJI[episode.severity]} {title}", 150),
                                    "emoji": True}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": _cut(f"*{k}*\n{v}", 2000)}
                                       for k, v in fields]},
    ]
    if examples:
        lines = [f"• `{e.trace_id}` value={e.value:.4g}"
                 + (f" — {_cut(e.excerpt, 200)}" if e.excerpt else "") for e in examples[:3]]
        blocks.append(_text("*Example traces*\n" + "\n".join(lines)))
    blocks.append(_text("*Dig in* (`driftline sql`)\n```" + dig_in_sql(episode) + "```"))
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
        f"episode `{episode.episode_id}` · one message per episode; a recovery follows "
        "when the alarms stop")}]})
    return {"text": _cut(f"{episode.severity.upper()}: {title} ({_change(episode)})", 3000),
            "blocks": blocks}


def recovery(episode: Episode) -> dict[str, Any]:
    closed = episode.closed_at or episode.last_alarm_at
    minutes = max(0, round((closed - episode.opened_at).total_seconds() / 60))
    text = (f":white_check_mark: Recovered: {episode.signal} in {episode.segment} "
            f"({episode.detector}) after {minutes} min, {episode.alarms} alarm(s), "
            f"peak severity {episode.severity}")
    return {"text": _cut(text, 3000), "blocks": [
        _text(text),
        {"type": "context", "elements": [{"type": "mrkdwn",
                                          "text": f"episode `{episode.episode_id}`"}]},
    ]}


def digest(notice: Notice) -> dict[str, Any]:
    episodes = sorted(notice.episodes, key=lambda e: (-("info", "warning", "critical")
                                                      .index(e.severity), e.segment))
    if notice.of == "open":
        title = f"{EMOJI[notice.severity]} Drift in {len(episodes)} segments at once"
        def line(e: Episode) -> str:
            return f"{EMOJI[e.severity]} `{e.segment}` · {e.detector} · {e.signal} · {_change(e)}"

        sql = ("SELECT segment, detector, signal, detected_at, mean_before, mean_after\n"
               "FROM drift_events FINAL WHERE detected_at >= now() - INTERVAL 1 HOUR\n"
               "ORDER BY detected_at  -- or: driftline sql --file "
               "schemas/clickhouse/queries/drifted_last_24h.sql")
    else:
        title = f":white_check_mark: {len(episodes)} drift episodes recovered"
        def line(e: Episode) -> str:
            return f"`{e.segment}` · {e.detector} · {e.signal}"

        sql = ""
    lines = [line(e) for e in episodes[:DIGEST_LINES]]
    if len(episodes) > DIGEST_LINES:
        lines.append(f"… and {len(episodes) - DIGEST_LINES} more")
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(title, 150),
                                    "emoji": True}},
        _text("\n".join(lines)),
    ]
    if sql:
        blocks.append(_text("*Dig in* (`driftline sql`)\n```" + sql + "```"))
    return {"text": _cut(title, 3000), "blocks": blocks}


def message(notice: Notice, examples: Sequence[Example] = ()) -> dict[str, Any]:
    """The webhook payload for a notice."""
    if notice.kind == "digest":
        return digest(notice)
    if notice.kind == "recovery":
        return recovery(notice.episodes[0])
    return opening(notice.episodes[0], examples)
