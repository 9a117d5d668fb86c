"""`driftline golden schedule --at HH:MM`: the nightly job, every day at that time.

The clock and the sleep are injected, so the loop is tested without waiting a day. A
failed night is logged and the loop goes on to the next one; a job that overruns its
slot skips the slots it missed rather than running twice in a row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)
UTC_ZONE = ZoneInfo("UTC")


def parse_at(value: str) -> clock_time:
    """``HH:MM`` (24 h) as a time of day.

    >>> parse_at("02:30")
    datetime.time(2, 30)
    """
    try:
        hours, minutes = value.split(":")
        return clock_time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"--at must be HH:MM (24-hour), got {value!r}") from None


def next_run(now: datetime, at: clock_time, tz: ZoneInfo) -> datetime:
    """The first ``at`` in ``tz`` strictly after ``now``.

    >>> now = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
    >>> next_run(now, clock_time(2, 0), ZoneInfo("UTC")).isoformat()
    '2026-11-22T02:00:00+00:00'
    >>> next_run(now.replace(hour=2), clock_time(2, 0), ZoneInfo("UTC")).isoformat()
    '2026-11-23T02:00:00+00:00'
    """
    local = now.astimezone(tz)
    candidate = datetime.combine(local.date(), at, tzinfo=tz)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=tz)
    return candidate


def run_daily(job: Callable[[], object], at: clock_time, *, tz: ZoneInfo = UTC_ZONE,
              clock: Callable[[], datetime] = lambda: datetime.now(UTC),
              sleep: Callable[[float], None] = time.sleep, max_runs: int | None = None,
              on_wait: Callable[[datetime], None] = lambda at: None) -> int:
    """Run ``job`` every day at ``at`` until ``max_runs`` (forever when None); returns the
    number of runs that succeeded."""
    runs = succeeded = 0
    while max_runs is None or runs < max_runs:
        due = next_run(clock(), at, tz)
        on_wait(due)
        # Sleep in steps of at most a minute: a suspended host or a clock change is
        # noticed within a minute instead of oversleeping the slot.
        while (left := (due - clock()).total_seconds()) > 0:
            sleep(min(left, 60.0))
        runs += 1
        try:
            job()
            succeeded += 1
        except Exception:
            log.exception("nightly golden job failed", extra={"due": due.isoformat()})
    return succeeded
