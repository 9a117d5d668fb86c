"""Write ``schemas/trace.schema.json``, the JSON Schema of the plain contract, from the model.

Run after changing :class:`schemas.trace.Trace`::

    python -m schemas.generate_json_schema          # rewrite the committed file
    python -m schemas.generate_json_schema --check  # exit 1 if it is stale
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from schemas.trace import Trace

PATH = Path(__file__).with_name("trace.schema.json")
SCHEMA_ID = "https://github.com/driftline/driftline/schemas/trace.schema.json"


def schema() -> dict[str, Any]:
    """The contract's JSON Schema (draft 2020-12, what pydantic emits)."""
    out: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **Trace.model_json_schema(mode="validation"),
    }
    out["title"] = "driftline trace"
    out["description"] = (
        "One model call as an app publishes it to Kafka (plain JSON form). Unknown fields "
        "are ignored. Texts longer than the configured limit are truncated, not refused."
    )
    feedback = out["properties"]["feedback"]
    for key in ("type", "minimum", "maximum"):  # replaced by its anyOf
        feedback.pop(key, None)
    return out


def render() -> bytes:
    # sorted keys and a trailing newline: a stable file, so the test can compare bytes
    return orjson.dumps(schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def main(argv: list[str]) -> int:
    fresh = render()
    if "--check" in argv:
        if not PATH.exists() or PATH.read_bytes() != fresh:
            print(f"{PATH} is stale: run python -m schemas.generate_json_schema",
                  file=sys.stderr)
            return 1
        return 0
    PATH.write_bytes(fresh)
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
