"""The committed JSON Schema is the model's, and it describes what the parser accepts."""

import pytest

from schemas import generate_json_schema as gen
from tests.unit.test_formats_payloads import plain


def test_committed_schema_matches_a_fresh_generation() -> None:
    assert gen.PATH.read_bytes() == gen.render(), (
        "schemas/trace.schema.json is stale: run python -m schemas.generate_json_schema")
    assert gen.main(["--check"]) == 0


def test_schema_names_the_contract() -> None:
    s = gen.schema()
    assert s["required"] == ["trace_id", "timestamp", "input", "output"]
    assert {"app", "model", "feedback", "metadata", "latency_ms"} <= set(s["properties"])
    # parser-side flags are private attributes, not part of what producers send
    assert "truncated_fields" not in s["properties"]


def test_examples_validate_against_the_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(gen.schema())
    validator.validate(plain())
    assert list(validator.iter_errors({"trace_id": "t", "timestamp": "x", "input": 1}))
