"""Posts drift alerts to a Slack incoming webhook, off the pipeline's path.

``handle(events)`` only puts the alarms on a bounded queue and returns: a slow, failing
or rate-limiting Slack never blocks or crashes the caller. One thread turns them into
messages (:mod:`sinks.alerts_policy` decides which, :mod:`sinks.slack_blocks` writes
them), posts with ``slack_sdk``'s ``WebhookClient`` (its retry handlers wait out a
429's Retry-After, retry connection errors and 5xx), retries a failed message later
with backoff up to ``max_attempts``, and records every outcome in the ``alerts`` table.

The webhook URL is a secret: it is never logged (slack_sdk's own debug log is scrubbed)
and never stored.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

from schemas.events import DriftEvent
from sinks.alerts_policy import AlertPolicy, Episode, Notice
from sinks.alerts_store import ClickHouseAlertStore, episode_row, notice_row
from sinks.slack_blocks import message

log = logging.getLogger(__name__)
REDACTED = "<slack-webhook>"
_STOP = object()


def check_webhook_url(url: str) -> str:
    """Fail fast on a malformed URL, without echoing it (it holds the secret)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the Slack webhook URL must be an http(s) URL "
                         "(https://hooks.slack.com/services/...)")
    return url


def _retry_handlers(rate_limit: int, server_error: int, connection: int) -> list[Any]:
    return [ConnectionErrorRetryHandler(max_retry_count=connection),
            RateLimitErrorRetryHandler(max_retry_count=rate_limit),
            ServerErrorRetryHandler(max_retry_count=server_error)]


def post_message(webhook_url: str, payload: dict[str, Any], *, timeout: int = 10) -> str:
    """Post one message that is not an alarm (a job's summary) with the alerter's retry
    handlers. Returns the error, scrubbed of the URL, or "" when sent; never raises."""
    check_webhook_url(webhook_url)
    scrub = _Scrub([webhook_url, urlsplit(webhook_url).path])
    http_log = logging.getLogger("driftline.slack.summary")
    known = next((f for f in http_log.filters if isinstance(f, _Scrub)), None)
    if known is None:
        http_log.addFilter(scrub)
    else:
        known.secrets.extend(scrub.secrets)
    client = WebhookClient(webhook_url, timeout=timeout, logger=http_log,
                           retry_handlers=_retry_handlers(3, 2, 2))
    try:
        response = client.send_dict(payload)
    except Exception as exc:
        return scrub.scrub(f"{type(exc).__name__}: {exc}")[:500]
    if response.status_code == 200:
        return ""
    return scrub.scrub(f"HTTP {response.status_code}: {response.body}")[:500]


class _Scrub(logging.Filter):
    """Replaces the webhook URL (and its secret path) in every record of a logger."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and s != "/"]

    def scrub(self, text: str) -> str:
        # Longest first, so a full URL is replaced whole rather than only its path.
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        clean = self.scrub(text)
        if clean != text:
            record.msg, record.args = clean, None
        return True


@dataclass(slots=True)
class AlerterStats:
    posted: int = 0
    digests: int = 0
    recoveries: int = 0
    failed_posts: int = 0
    retried_posts: int = 0
    gave_up: int = 0
    quiet_episodes: int = 0
    dropped_events: int = 0
    store_errors: int = 0
    last_error: str = ""


@dataclass(slots=True)
class _Retry:
    notice: Notice
    attempts: int
    next_at: datetime


@dataclass(slots=True)
class _Status:
    """How each episode's opening row reads now, to rewrite it when the episode ends."""

    by_episode: dict[str, str] = field(default_factory=dict)


class SlackAlerter:
    def __init__(
        self,
        webhook_url: str,
        *,
        policy: AlertPolicy | None = None,
        store: ClickHouseAlertStore | None = None,
        max_attempts: int = 5,
        retry_backoff: timedelta = timedelta(seconds=30),
        rate_limit_retries: int = 3,
        server_error_retries: int = 2,
        connection_retries: int = 2,
        timeout: int = 10,
        queue_size: int = 10_000,
        poll_interval: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        check_webhook_url(webhook_url)
        self.policy = policy or AlertPolicy()
        self.store = store
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.poll_interval = poll_interval
        self.clock = clock
        self.stats = AlerterStats()
        self._scrub = _Scrub([webhook_url, urlsplit(webhook_url).path])
        http_log = logging.getLogger("driftline.slack.http")
        if not any(isinstance(f, _Scrub) for f in http_log.filters):
            http_log.addFilter(self._scrub)
        else:  # one filter per logger, knowing every URL in use
            next(f for f in http_log.filters if isinstance(f, _Scrub)).secrets.extend(
                self._scrub.secrets)
        self._client = WebhookClient(
            webhook_url, timeout=timeout, logger=http_log,
            retry_handlers=_retry_handlers(rate_limit_retries, server_error_retries,
                                           connection_retries))
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._retries: list[_Retry] = []
        self._status = _Status()
        self._thread: threading.Thread | None = None

    # -- the caller's side: never blocks --------------------------------------------

    def start(self) -> None:
        """Reload state from the alerts table, then post from a background thread."""
        self.restore()
        self._thread = threading.Thread(target=self._loop, name="slack-alerter", daemon=True)
        self._thread.start()

    def handle(self, events: Iterable[DriftEvent]) -> None:
        """Queue alarms for the alerter; returns at once, whatever Slack is doing."""
        events = list(events)
        if not events:
            return
        try:
            self._queue.put_nowait(events)
        except queue.Full:
            # The alarms are stored in drift_events regardless; only the message is lost.
            self.stats.dropped_events += len(events)
            log.error("alert queue full, alarms not announced",
                      extra={"events": len(events)})

    def close(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.error("alert queue full at shutdown")
        self._thread.join(timeout)
        self._thread = None

    # -- the alerter's thread ---------------------------------------------------------

    def restore(self) -> None:
        if self.store is None:
            return
        try:
            episodes, last = self.store.load()
        except Exception as exc:  # a dead store must not stop alerting
            self._store_failed(exc)
            return
        for episode in episodes:
            self._status.by_episode[episode.episode_id] = {
                "notified": "sent", "pending": "failed"}.get(episode.delivery, episode.delivery)
        self.policy.restore(episodes, last)

    def _loop(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self.poll_interval)
            except queue.Empty:
                item = []
            stop = item is _STOP
            events: list[DriftEvent] = [] if stop else list(item)
            while not stop:  # take everything already queued: one step, one digest
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                stop = more is _STOP
                if not stop:
                    events.extend(more)
            try:
                self.process(events)
            except Exception as exc:  # the thread must outlive any bug or outage
                self.stats.last_error = self._scrub.scrub(f"{type(exc).__name__}: {exc}")
                log.error("alerter step failed", extra={"error": self.stats.last_error})
            if stop:
                return

    def process(self, events: Iterable[DriftEvent] = ()) -> None:
        """One step: fold alarms in, post what is due, retry failed posts, record."""
        now = self.clock()
        self.policy.observe(events, now)
        decisions = self.policy.step(now)
        rows: list[list[Any]] = []
        for episode in decisions.quiet:
            self.stats.quiet_episodes += 1
            self._status.by_episode[episode.episode_id] = episode.delivery
            rows.append(episode_row(episode, episode.delivery, now=now))
        for episode in decisions.closed:
            status = self._status.by_episode.pop(episode.episode_id, episode.delivery)
            rows.append(episode_row(episode, status, now=now))
        self._save(rows)
        for notice in decisions.notices:
            self._deliver(notice, attempts=1)
        for retry in [r for r in self._retries if r.next_at <= now]:
            self._retries.remove(retry)
            self.stats.retried_posts += 1
            self._deliver(retry.notice, attempts=retry.attempts + 1)

    def _deliver(self, notice: Notice, attempts: int) -> None:
        examples = []
        if notice.kind == "open" and self.store is not None:
            try:
                examples = self.store.examples(notice.episodes[0])
            except Exception as exc:  # a message without examples beats no message
                self._store_failed(exc)
        payload = message(notice, examples)
        error = self._post(payload)
        now = self.clock()
        sent_at = None if error else now
        if error:
            self.stats.failed_posts += 1
            self.stats.last_error = error
            if attempts < self.max_attempts:
                backoff = self.retry_backoff * 2 ** (attempts - 1)
                self._retries.append(_Retry(notice, attempts, now + backoff))
            else:
                self.stats.gave_up += 1
            log.warning("slack post failed", extra={
                "alert_id": notice.alert_id, "attempts": attempts, "error": error,
                "will_retry": attempts < self.max_attempts})
        else:
            self.stats.posted += 1
            self.stats.digests += notice.kind == "digest"
            self.stats.recoveries += notice.kind == "recovery" or notice.of == "recovery"
        self._save(self._rows(notice, error, attempts, payload, sent_at, now))

    def _rows(self, notice: Notice, error: str, attempts: int, payload: dict[str, Any],
              sent_at: datetime | None, now: datetime) -> list[list[Any]]:
        status = "failed" if error else "sent"
        if notice.kind == "open":
            episode = notice.episodes[0]
            self._status.by_episode[episode.episode_id] = status
            return [episode_row(episode, status, now=now, attempts=attempts, error=error,
                                payload=payload, sent_at=sent_at)]
        rows = [notice_row(notice, status, now=now, attempts=attempts, error=error,
                           payload=payload, sent_at=sent_at)]
        if notice.kind == "digest" and notice.of == "open":
            for episode in notice.episodes:
                each = "failed" if error else "digested"
                self._status.by_episode[episode.episode_id] = each
                rows.append(episode_row(episode, each, now=now, attempts=attempts,
                                        error=error, sent_at=sent_at))
        return rows

    def _post(self, payload: dict[str, Any]) -> str:
        """Post once (slack_sdk retries inside); returns the error, empty when sent."""
        try:
            response = self._client.send_dict(payload)
        except Exception as exc:
            return self._scrub.scrub(f"{type(exc).__name__}: {exc}")[:500]
        if response.status_code == 200:
            return ""
        return self._scrub.scrub(f"HTTP {response.status_code}: {response.body}")[:500]

    def _save(self, rows: list[list[Any]]) -> None:
        if not rows or self.store is None:
            return
        try:
            self.store.save(rows)
        except Exception as exc:  # recorded as a counter; the post itself went out
            self._store_failed(exc)

    def _store_failed(self, exc: Exception) -> None:
        self.stats.store_errors += 1
        self.stats.last_error = self._scrub.scrub(f"{type(exc).__name__}: {exc}")[:500]
        log.warning("alert state not stored", extra={"error": self.stats.last_error})


def episode_of(alerter: SlackAlerter, segment: str, detector: str, signal: str
               ) -> Episode | None:
    """The open episode of (segment, detector, signal), e.g. to tag drift_events rows."""
    return alerter.policy.open.get((segment, detector, signal))
