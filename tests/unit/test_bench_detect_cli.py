"""`driftline bench detect --json`: a stable interface other tools parse."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
from typer.testing import CliRunner

from pipeline.cli import app


def write(path: Path, values: list[float]) -> Path:
    path.write_bytes(b"\n".join(orjson.dumps({
        "trace_id": f"t{i}", "timestamp": 1_700_000_000_000 + i, "input": "q", "output": "a",
        "scores": {"flag": v}}) for i, v in enumerate(values)))
    return path


def test_flag_stream_with_a_jump(tmp_path: Path) -> None:
    rng = random.Random(5)
    reference = write(tmp_path / "ref.jsonl",
                      [float(rng.random() < 0.03) for _ in range(3000)])
    stream = write(tmp_path / "stream.jsonl",
                   [float(rng.random() < (0.03 if i < 1500 else 0.15)) for i in range(3000)])
    result = CliRunner().invoke(app, ["bench", "detect", "--reference", str(reference),
                                      "--stream", str(stream), "--signal", "flag",
                                      "--ert", "5000", "--json"])
    assert result.exit_code == 0, result.output
    out = orjson.loads(result.stdout)
    assert set(out) == {"alarms", "updates", "seconds"}
    assert out["updates"] == 3000
    assert out["alarms"] and 1500 <= out["alarms"][0] < 1800


def test_missing_score_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"trace_id": "t", "scores": {}}\n')
    result = CliRunner().invoke(app, ["bench", "detect", "--reference", str(bad), "--stream",
                                      str(bad), "--signal", "flag", "--json"])
    assert result.exit_code != 0
    assert "bad.jsonl:1" in result.output
