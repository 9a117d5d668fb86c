"""A case's own expectations, checked on the model's answer (no judge involved)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from pipeline.golden.cases import Expected


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    passed: bool
    detail: str = ""


def check(expected: Expected, output: str) -> list[Check]:
    """One :class:`Check` per expectation the case declares.

    >>> [c.passed for c in check(Expected(must_include=("2 days",), must_exclude=("PIN",)),
    ...                          "It arrives in 2 days.")]
    [True, True]
    >>> check(Expected(json_schema={"type": "object", "required": ["id"]}), '{"x": 1}')[0].detail
    "'id' is a required property"
    """
    checks: list[Check] = []
    lowered = output.lower()
    for needle in expected.must_include:
        found = needle.lower() in lowered
        checks.append(Check(f"includes:{needle}", found, "" if found else "missing"))
    for needle in expected.must_exclude:
        found = needle.lower() in lowered
        checks.append(Check(f"excludes:{needle}", not found, "present" if found else ""))
    if expected.json_schema is not None:
        checks.append(_schema_check(expected.json_schema, output))
    return checks


def _schema_check(schema: dict[str, object], output: str) -> Check:
    import jsonschema

    try:
        document = orjson.loads(output)
    except orjson.JSONDecodeError as exc:
        return Check("json_schema", False, f"not JSON: {exc}")
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema)
                                             .iter_errors(document))
    return Check("json_schema", error is None, "" if error is None else error.message)
