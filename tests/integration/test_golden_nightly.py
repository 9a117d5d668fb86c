"""The golden set end to end on the real broker and chdb: a worker ingests and judges
live traffic (the simulator as model and judge, through the real openai SDK) while one
model's quality drops; the nightly runs gate each model and compare with live traffic;
promotion turns the failing live traces into candidate golden cases."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from pipeline.config import Settings
from pipeline.demo_traffic import queries
from pipeline.golden.banking77 import banking77_cases
from pipeline.producer import publish
from pipeline.simulator import SimulatorConfig, SimulatorThread
from pipeline.sql_client import worker_query
from pipeline.topics import ensure_topics
from pipeline.worker_process import settings_env
from tests.conftest import wait_for
from tests.integration.conftest import make_settings, stats
from tests.unit.test_golden_compare import EMBEDDER_CACHE
from tests.unit.test_slack_alerts import Recorder

GOLDEN = banking77_cases(per_intent=1, apps=("support-bot",))
LIVE_PER_MODEL = 300


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    # sim-b answers its first golden run (77 cases) well, then refuses half the questions.
    config = SimulatorConfig(base_refusal_rate=0.03, drop_model="sim-b",
                             drop_after=len(GOLDEN), drop_rate=0.5, seed=9)
    with SimulatorThread(config) as s:
        yield s


@pytest.fixture
def slack() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def driftline(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args],
                          env=settings_env(settings), capture_output=True, text=True,
                          timeout=600)


async def _answers(sim: SimulatorThread, asks: list[tuple[str, str]]) -> list[str]:
    client = openai.AsyncOpenAI(base_url=sim.base_url, api_key="unused")
    gate = asyncio.Semaphore(32)

    async def ask(model: str, text: str) -> str:
        async with gate:
            r = await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": text}])
            return r.choices[0].message.content or ""

    try:
        return list(await asyncio.gather(*(ask(m, t) for m, t in asks)))
    finally:
        await client.close()


def live_traces(sim: SimulatorThread) -> list[tuple[bytes, bytes]]:
    """Production traffic of the support bot on two models, answered by the simulator."""
    rng = random.Random(3)
    pool = queries()
    now = datetime.now(UTC)
    asks = [(model, pool[rng.randrange(len(pool))][0])
            for _ in range(LIVE_PER_MODEL) for model in ("sim-a", "sim-b")]
    outputs = asyncio.run(_answers(sim, asks))
    messages = []
    for i, ((model, text), output) in enumerate(zip(asks, outputs, strict=True)):
        trace = {"trace_id": f"live-{model}-{i:05d}", "app": "support-bot", "model": model,
                 "timestamp": (now - timedelta(seconds=len(asks) - i)).isoformat(),
                 "input": text, "output": output, "latency_ms": 300.0}
        messages.append((f"support-bot|{model}".encode(), orjson.dumps(trace)))
    return messages


def test_nightly_golden_runs_gate_compare_and_promote(
        broker: str, tmp_path: Path, worker_factory: Any, sim: SimulatorThread,
        slack: Recorder) -> None:
    settings = make_settings(
        tmp_path, broker, model_base_url=sim.base_url, judge_base_url=sim.base_url,
        judge_model="sim-judge", sample_rate=1.0, judge_calls_per_minute=100_000,
        embedder_cache_dir=EMBEDDER_CACHE, slack_webhook_url=slack.url)
    ensure_topics(settings)
    worker_factory(settings)
    golden = tmp_path / "golden.jsonl"
    assert driftline(settings, "golden", "demo-set", str(golden), "--per-intent", "1",
                     "--apps", "support-bot").returncode == 0
    loaded = driftline(settings, "golden", "load", str(golden))
    assert loaded.returncode == 0 and f"loaded {len(GOLDEN)} cases" in loaded.stdout, loaded

    # Night 1, before the drop: both models pass the gate.
    for model in ("sim-a", "sim-b"):
        night = driftline(settings, "golden", "run", "--model", model, "--gate",
                          "--no-compare")
        assert night.returncode == 0, night.stdout + night.stderr

    # A day of live traffic: sim-b now refuses half the questions.
    messages = live_traces(sim)
    assert publish(settings, messages).delivered == len(messages)
    wait_for(lambda: stats(settings)["stored"] == len(messages), timeout=180,
             what="live traces stored")
    wait_for(lambda: stats(settings)["judged"] == stats(settings)["sampled"] == len(messages),
             timeout=180, what="every live trace judged")

    # Night 2: the regressed model fails its gate, and the comparison flags its segment.
    bad = driftline(settings, "golden", "run", "--model", "sim-b", "--gate")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "pass rate regressed" in bad.stdout
    good = driftline(settings, "golden", "run", "--model", "sim-a", "--gate", "--no-compare")
    assert good.returncode == 0, good.stdout + good.stderr

    _, events = worker_query(settings, "SELECT DISTINCT segment, signal FROM drift_events "
                                       "FINAL WHERE detector = 'golden_compare' ORDER BY signal")
    assert events == [["support-bot|sim-b", "judge"], ["support-bot|sim-b", "refusal"]]
    assert len(slack.bodies) == 1
    summary = slack.bodies[0]["text"]
    assert "1 of 2 segments differ" in summary
    report = Path(summary.split("Report: ", 1)[1])
    assert report.parent == tmp_path / "reports" and report.exists()

    # Promotion: the failing live traces become candidates that name their source.
    candidates = tmp_path / "candidates.jsonl"
    mined = driftline(settings, "golden", "promote", "--out", str(candidates))
    assert mined.returncode == 0, mined.stdout + mined.stderr
    lines = [orjson.loads(line) for line in candidates.read_bytes().splitlines()]
    _, refused = worker_query(settings, "SELECT trace_id FROM scores_all WHERE name = "
                                        "'refusal' AND value = 1 AND segment = "
                                        "'support-bot|sim-b'")
    refused_ids = {r[0] for r in refused}
    assert len(refused_ids) > LIVE_PER_MODEL / 3
    from_b = [c for c in lines if c["review"]["segment"] == "support-bot|sim-b"]
    assert len(from_b) > len(lines) / 2
    assert all(c["source_trace_id"] in refused_ids for c in from_b)
    assert all(c["source_trace_id"].startswith("live-") for c in lines)
    accepted = driftline(settings, "golden", "promote", "--accept", str(candidates))
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    _, versions = worker_query(settings, "SELECT dataset_version, count(), countIf(source_"
                                         "trace_id != '') FROM golden_cases FINAL GROUP BY "
                                         "dataset_version ORDER BY count()")
    assert [v[1:] for v in versions] == [[len(GOLDEN), 0],
                                         [len(GOLDEN) + len(lines), len(lines)]]
