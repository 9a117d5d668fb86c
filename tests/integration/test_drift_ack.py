"""`driftline drift ack` through the real broker: the command reaches the worker holding
the segment, which re-arms its detectors and marks the alarms acknowledged; the
re-armed detector alarms again when the drift goes on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from pipeline.demo_traffic import Scenario, generate
from pipeline.producer import publish
from pipeline.topics import ensure_topics
from pipeline.worker_process import settings_env
from tests.conftest import wait_for
from tests.integration.conftest import make_settings, scalar

GUARDRAIL_ALARMS = "SELECT count() FROM drift_events FINAL WHERE signal = 'guardrail'"


def test_ack_rearms_the_segments_detectors_and_marks_its_alarms(
        broker: str, tmp_path: Path, worker_factory: Any) -> None:
    settings = make_settings(tmp_path, broker, flag_warmup=200, max_age=0)
    ensure_topics(settings)
    first = Scenario(n=6000, drift_at=0.5, drifted_refusal=0.30, seed=41, run_id="ack1")
    assert first.drift_segment is not None
    segment = first.drift_segment.key
    assert publish(settings, generate(first)).delivered == first.n
    worker_factory(settings)
    wait_for(lambda: scalar(settings, GUARDRAIL_ALARMS) >= 1, timeout=180,
             what="a guardrail alarm on the drifting segment")
    # One alarm per episode: the rest of the drifted traffic raises no second one.
    wait_for(lambda: scalar(settings, "SELECT count() FROM traces FINAL") == first.n,
             timeout=120, what="the first scenario stored")
    assert scalar(settings, GUARDRAIL_ALARMS) == 1
    assert scalar(settings, "SELECT groupUniqArray(segment) FROM drift_events FINAL") \
        == [segment]

    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "drift", "ack", segment,
                           "--by", "oncall"], env=settings_env(settings),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    wait_for(lambda: scalar(settings, "SELECT countIf(acknowledged = 1 AND acknowledged_by "
                                      "= 'oncall') FROM drift_events FINAL") >= 1,
             timeout=60, what="the alarms marked acknowledged")

    # The drift goes on: the re-armed detector opens a new episode.
    more = Scenario(n=4000, drift_at=0.0, drifted_refusal=0.30, seed=42, run_id="ack2")
    assert publish(settings, generate(more)).delivered == more.n
    wait_for(lambda: scalar(settings, GUARDRAIL_ALARMS) == 2, timeout=180,
             what="a second guardrail episode after the ack")
    assert scalar(settings, "SELECT countIf(acknowledged = 0) FROM drift_events FINAL "
                            "WHERE signal = 'guardrail'") == 1
