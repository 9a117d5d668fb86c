"""`driftline golden schedule`: the nightly loop on an injected clock, and its CLI checks."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

import pytest

from pipeline.golden.schedule import parse_at, run_daily


class FakeClock:
    """Time moves only when the loop sleeps (or a job takes time)."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def test_runs_every_day_at_the_time_and_survives_a_failed_night() -> None:
    clock = FakeClock(datetime(2026, 11, 22, 23, 30, tzinfo=UTC))
    ran: list[datetime] = []

    def job() -> None:
        ran.append(clock.now)
        clock.now += timedelta(minutes=20)  # the job itself takes time
        if len(ran) == 2:
            raise RuntimeError("model endpoint down")

    ok = run_daily(job, clock_time(2, 0), clock=clock, sleep=clock.sleep, max_runs=3)
    assert ran == [datetime(2026, 11, d, 2, 0, tzinfo=UTC) for d in (23, 24, 25)]
    assert ok == 2
    assert max(clock.slept) <= 60.0  # never sleeps past a clock change by more than 1 min


def test_a_job_overrunning_its_slot_does_not_run_twice_in_a_row() -> None:
    clock = FakeClock(datetime(2026, 11, 22, 1, 59, tzinfo=UTC))
    ran: list[datetime] = []

    def job() -> None:
        ran.append(clock.now)
        clock.now += timedelta(hours=25)

    run_daily(job, clock_time(2, 0), clock=clock, sleep=clock.sleep, max_runs=2)
    assert ran == [datetime(2026, 11, 22, 2, 0, tzinfo=UTC),
                   datetime(2026, 11, 24, 2, 0, tzinfo=UTC)]


def test_time_zone_of_at() -> None:
    clock = FakeClock(datetime(2026, 6, 30, 23, 0, tzinfo=UTC))
    ran: list[datetime] = []
    run_daily(lambda: ran.append(clock.now), clock_time(2, 0), tz=ZoneInfo("Europe/Madrid"),
              clock=clock, sleep=clock.sleep, max_runs=1)
    assert ran == [datetime(2026, 7, 1, 0, 0, tzinfo=UTC)]  # 02:00 CEST


def test_bad_times_are_refused() -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        parse_at("2am")
    with pytest.raises(ValueError, match="HH:MM"):
        parse_at("25:00")
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "golden", "schedule",
                           "--at", "7pm"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "HH:MM" in done.stderr
