"""`driftline golden load|run --gate` as a user runs them: subprocesses, the simulator as
the model and the judge, the embedded ClickHouse engine as the store."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from pipeline.simulator import SimulatorConfig, SimulatorThread


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(SimulatorConfig(drop_model="bad-model", drop_rate=0.5, seed=1)) as s:
        yield s


def driftline(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_load_run_and_gate(sim: SimulatorThread, tmp_path: Path) -> None:
    golden = tmp_path / "golden.jsonl"
    golden.write_bytes(b"\n".join(orjson.dumps(
        {"id": f"g{i}", "input": f"How do I top up my account? ({i})", "app": "support-bot",
         "expected": {"must_exclude": ["password"]}}) for i in range(80)))
    env = {**os.environ, "DRIFTLINE_DATA_DIR": str(tmp_path / "data"),
           "DRIFTLINE_WEB_PORT": "1",  # no worker: the CLI opens the store itself
           "DRIFTLINE_MODEL_BASE_URL": sim.base_url, "DRIFTLINE_JUDGE_BASE_URL": sim.base_url,
           "DRIFTLINE_JUDGE_MODEL": "sim-judge"}
    loaded = driftline(env, "golden", "load", str(golden))
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 80 cases" in loaded.stdout
    good = driftline({**env, "DRIFTLINE_MODEL_NAME": "good-model"}, "golden", "run",
                     "--file", str(golden), "--gate")
    assert good.returncode == 0, good.stdout + good.stderr
    bad = driftline({**env, "DRIFTLINE_MODEL_NAME": "bad-model"}, "golden", "run",
                    "--file", str(golden), "--gate")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "pass rate regressed" in bad.stdout
    listed = driftline(env, "sql", "--format", "json",
                       "SELECT model, cases, gate_passed FROM golden_runs FINAL "
                       "ORDER BY started_at")
    runs = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["model"], r["cases"], r["gate_passed"]) for r in runs] == [
        ("good-model", 80, 1), ("bad-model", 80, 0)]
