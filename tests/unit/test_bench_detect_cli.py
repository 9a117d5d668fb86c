"""`driftline bench detect --json`: a stable interface other tools parse."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import orjson
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import ConfigError


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


def banking(*intents: str) -> list[str]:
    from pipeline.bench.common import DATA

    with (DATA / "train.csv").open(newline="", encoding="utf-8") as fh:
        return [r["text"] for r in csv.DictReader(fh) if r["category"] in intents]


def write_texts(path: Path, texts: list[str]) -> Path:
    path.write_bytes(b"\n".join(orjson.dumps({
        "trace_id": f"t{i}", "timestamp": 1_700_000_000_000 + i, "input": t, "output": "a"})
        for i, t in enumerate(texts)))
    return path


def test_embedding_stream_with_a_new_intent(tmp_path: Path) -> None:
    # the product's embedders embed `input`; hashing needs no model, so the test is fast
    known = banking("card_arrival", "card_linking", "lost_or_stolen_card", "pin_blocked",
                    "top_up_failed", "exchange_rate", "card_payment_fee_charged")
    random.Random(1).shuffle(known)
    novel = banking("cash_withdrawal_charge", "wrong_amount_of_cash_received")
    reference = write_texts(tmp_path / "ref.jsonl", known[:500])
    stream = write_texts(tmp_path / "stream.jsonl", known[500:800] + novel[:300])
    result = CliRunner().invoke(app, ["bench", "detect", "--reference", str(reference),
                                      "--stream", str(stream), "--signal", "embedding",
                                      "--embedder", "hashing", "--ert", "5000", "--json"])
    assert result.exit_code == 0, result.output
    out = orjson.loads(result.stdout)
    assert out["updates"] == 600
    assert out["alarms"] and 300 <= out["alarms"][0] < 400


def test_unknown_embedder_names_the_setting(tmp_path: Path) -> None:
    texts = write_texts(tmp_path / "t.jsonl", ["a card"] * 3)
    result = CliRunner().invoke(app, ["bench", "detect", "--reference", str(texts), "--stream",
                                      str(texts), "--signal", "embedding", "--embedder",
                                      "word2vec", "--json"])
    assert isinstance(result.exception, ConfigError)
    assert "DRIFTLINE_EMBEDDER" in str(result.exception)
