"""The Slack alerter against a local HTTP server that records what it receives, with its
state in the alerts table of the real engine (chdb)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from schemas.events import DriftEvent
from sinks.alerts_policy import AlertPolicy, classify
from sinks.alerts_store import ClickHouseAlertStore
from sinks.clickhouse_client import connect
from sinks.clickhouse_schema import apply_migrations
from sinks.slack_alerter import SlackAlerter, check_webhook_url
from tests.conftest import wait_for

SECRET_PATH = "/services/T000/B000/s3cr3tW3bh00kT0k3n"
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class Recorder(ThreadingHTTPServer):
    """A webhook that records every JSON body; answers from ``replies`` (then 200 ok)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: list[dict[str, Any]] = []
        self.replies: deque[tuple[int, dict[str, str]]] = deque()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{SECRET_PATH}"


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.bodies.append(json.loads(body))
            status, headers = (self.server.replies.popleft() if self.server.replies
                               else (200, {}))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"rate_limited")

    def log_message(self, *args: Any) -> None:
        """Quiet: the test asserts on the log."""


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    # chdb allows one directory per process at a time: one for the whole module.
    path: Path = tmp_path_factory.mktemp("chdb-slack")
    c = connect(f"chdb://{path}")
    apply_migrations(c)
    c.insert("scores", [[f"tr-{i}", T0 - timedelta(minutes=i), "bot|a", "refusal",
                         float(i % 2)] for i in range(20)],
             column_names=["trace_id", "ts", "segment", "name", "value"])
    c.insert("traces", [[f"tr-{i}", T0 - timedelta(minutes=i), "bot|a", "q", f"answer {i}"]
                        for i in range(20)],
             column_names=["trace_id", "ts", "segment", "input", "output"])
    yield c
    c.close()


@pytest.fixture()
def server() -> Iterator[Recorder]:
    srv = Recorder()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture()
def store(client: Client) -> ClickHouseAlertStore:
    client.command("TRUNCATE TABLE alerts")
    return ClickHouseAlertStore(client)


def alarm(segment: str = "bot|a", signal: str = "refusal", n: int = 0,
          before: float = 0.03, after: float = 0.3) -> DriftEvent:
    return DriftEvent(detected_at=T0 + timedelta(seconds=n), segment=segment,
                      detector="adwin", signal=signal, trace_id=f"tr-{n}", statistic=0.27,
                      threshold=0.05, mean_before=before, mean_after=after, window=400)


def alerter(server: Recorder, store: ClickHouseAlertStore | None, clock: Clock,
            **policy: Any) -> SlackAlerter:
    settings: dict[str, Any] = {"digest_window": timedelta(0), "min_severity": "info"} | policy
    return SlackAlerter(server.url, policy=AlertPolicy(**settings), store=store, clock=clock,
                        retry_backoff=timedelta(seconds=30), server_error_retries=0)


def test_opening_message_has_what_how_much_since_examples_and_sql(
        server: Recorder, store: ClickHouseAlertStore) -> None:
    clock = Clock()
    a = alerter(server, store, clock)
    a.process([alarm()])
    assert len(server.bodies) == 1
    body = server.bodies[0]
    assert "refusal" in body["text"] and "bot|a" in body["text"]
    blocks = body["blocks"]
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["type"] == "plain_text" and len(blocks[0]["text"]["text"]) <= 150
    fields = " ".join(f["text"] for f in blocks[1]["fields"])
    for expected in ("bot|a", "adwin", "refusal", "critical", "0.27 vs threshold 0.05",
                     "0.03 → 0.3", "2026-11-22 12:00:00 UTC"):
        assert expected in fields
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]
    examples = next(t for t in texts if t.startswith("*Example traces*"))
    assert examples.count("• `tr-") == 3 and "value=1" in examples  # refusals went up
    sql = next(t for t in texts if "*Dig in*" in t)
    assert "FROM scores_all" in sql and "segment = 'bot|a'" in sql
    assert len(blocks) <= 50


def test_one_message_per_episode_then_recovery_and_cooldown(
        server: Recorder, store: ClickHouseAlertStore) -> None:
    clock = Clock()
    a = alerter(server, store, clock, cooldown=timedelta(minutes=60),
                recover_after=timedelta(minutes=10))
    for n in range(10):  # one drift keeps alarming
        a.process([alarm(n=n)])
        clock.advance(minutes=1)
    assert len(server.bodies) == 1
    clock.advance(minutes=10)
    a.process()
    assert len(server.bodies) == 2 and server.bodies[1]["text"].startswith(
        ":white_check_mark: Recovered: refusal in bot|a")
    # It comes back within the cooldown: recorded, not posted...
    a.process([alarm(n=100)])
    assert len(server.bodies) == 2
    assert a.stats.quiet_episodes == 1
    # ...until the cooldown is over while it still drifts: then it is announced once.
    clock.advance(minutes=50)
    a.process([alarm(n=101)])
    assert len(server.bodies) == 3 and server.bodies[2]["text"].startswith("CRITICAL")
    rows = store.client.query("SELECT kind, status FROM alerts FINAL ORDER BY updated_at")
    assert ("recovery", "sent") in rows.result_rows


def test_many_segments_at_once_make_one_digest(server: Recorder,
                                               store: ClickHouseAlertStore) -> None:
    clock = Clock()
    a = alerter(server, store, clock, digest_window=timedelta(seconds=10),
                digest_threshold=5)
    a.process([alarm(segment=f"app-{i}|m") for i in range(3)])
    clock.advance(seconds=2)
    a.process([alarm(segment=f"app-{i}|m") for i in range(3, 7)])
    assert server.bodies == []  # waiting for the digest window
    clock.advance(seconds=10)
    a.process()
    assert len(server.bodies) == 1
    digest = server.bodies[0]
    assert "Drift in 7 segments at once" in digest["blocks"][0]["text"]["text"]
    assert all(f"app-{i}|m" in digest["blocks"][1]["text"]["text"] for i in range(7))
    statuses = store.client.query(
        "SELECT status, count() FROM alerts FINAL WHERE kind = 'open' GROUP BY status")
    assert statuses.result_rows == [("digested", 7)]


def test_rate_limit_is_waited_out_with_retry_after(server: Recorder,
                                                    store: ClickHouseAlertStore) -> None:
    server.replies.append((429, {"Retry-After": "1"}))
    a = alerter(server, store, Clock())
    started = time.monotonic()
    a.process([alarm()])
    assert time.monotonic() - started >= 1.0  # slack_sdk honoured Retry-After
    assert len(server.bodies) == 2 and server.bodies[0] == server.bodies[1]
    assert a.stats.posted == 1 and a.stats.failed_posts == 0


def test_failed_post_is_recorded_retried_and_secret_never_logged(
        server: Recorder, store: ClickHouseAlertStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = Clock()
    server.replies.extend([(500, {}), (503, {})])
    a = alerter(server, store, clock)
    a.process([alarm()])
    assert a.stats.failed_posts == 1
    row = store.client.query("SELECT status, attempts, last_error FROM alerts FINAL "
                             "WHERE kind = 'open'").result_rows
    assert row == [("failed", 1, "HTTP 500: rate_limited")]
    clock.advance(seconds=29)
    a.process()
    assert len(server.bodies) == 1  # backoff not over
    clock.advance(seconds=1)
    a.process()  # 503
    clock.advance(seconds=60)
    a.process()  # sent
    assert a.stats.posted == 1 and a.stats.retried_posts == 2
    row = store.client.query("SELECT status, attempts FROM alerts FINAL "
                             "WHERE kind = 'open'").result_rows
    assert row == [("sent", 3)]
    assert "slack post failed" in caplog.text
    logged = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert SECRET_PATH not in logged and "s3cr3t" not in logged
    stored = store.client.query("SELECT * FROM alerts")
    assert "s3cr3t" not in str(stored.result_rows)


def test_restart_does_not_resend(server: Recorder, store: ClickHouseAlertStore) -> None:
    clock = Clock()
    first = alerter(server, store, clock, cooldown=timedelta(minutes=30))
    first.process([alarm(), alarm(segment="other|m")])
    assert len(server.bodies) == 2
    second = alerter(server, store, clock, cooldown=timedelta(minutes=30))
    second.restore()  # a new process: state from the alerts table
    clock.advance(minutes=1)
    second.process([alarm(n=5), alarm(segment="other|m", n=6)])
    assert len(server.bodies) == 2
    assert set(second.policy.open) == {("bot|a", "adwin", "refusal"),
                                       ("other|m", "adwin", "refusal")}


def test_handle_never_blocks_and_the_thread_posts(server: Recorder) -> None:
    a = SlackAlerter(server.url, policy=AlertPolicy(digest_window=timedelta(0)),
                     poll_interval=0.05)
    a.start()
    try:
        started = time.monotonic()
        a.handle([alarm()])
        assert time.monotonic() - started < 0.05
        wait_for(lambda: a.stats.posted == 1, timeout=10, what="the alert to be posted",
                 interval=0.01)
    finally:
        a.close()
    assert len(server.bodies) == 1


def test_unreachable_slack_is_recorded_not_raised(store: ClickHouseAlertStore) -> None:
    a = SlackAlerter("http://127.0.0.1:9/services/x/y/z", store=store,
                     policy=AlertPolicy(digest_window=timedelta(0)),
                     connection_retries=0, server_error_retries=0)
    a.process([alarm()])
    assert a.stats.failed_posts == 1 and "URLError" in a.stats.last_error
    assert "/services/x/y/z" not in a.stats.last_error


def test_severity_and_url_checks() -> None:
    assert classify(alarm(before=0.03, after=0.3)) == "critical"
    moderate = DriftEvent(T0, "s", "adwin", "refusal", "t", 0.06, 0.05, 0.5, 0.65, 100)
    assert classify(moderate) == "warning"
    small = DriftEvent(T0, "s", "adwin", "judge", "t", 0.06, 0.05, 0.80, 0.78, 100)
    assert classify(small) == "info"
    with pytest.raises(ValueError, match="http") as err:
        check_webhook_url("hooks.slack.com/services/T/B/secret")
    assert "secret" not in str(err.value)
