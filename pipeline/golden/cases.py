"""The golden-set file format: JSONL, one case per line.

Each line: ``id``, ``input`` (text or chat messages), optional ``expected`` (what a good
answer must satisfy), ``tags``, segment fields (``app``, ``route``), and provenance
(``source_trace_id`` for a case mined from production).

>>> case = GoldenCase.model_validate({"id": "c1", "input": "Where is my card?",
...     "expected": {"must_include": ["working days"], "must_exclude": ["PIN"]},
...     "tags": ["card_arrival"]})
>>> case.input_text, case.expected.must_include
('Where is my card?', ('working days',))
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    role: str = "user"
    content: str = ""


class Expected(BaseModel):
    """What a good answer satisfies; every field is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reference: str | None = Field(default=None, description="a reference answer for the judge")
    must_include: tuple[str, ...] = ()
    must_exclude: tuple[str, ...] = ()
    json_schema: dict[str, Any] | None = None
    label: str | None = Field(default=None, description="the judge label a good answer gets")


class GoldenCase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=256)
    input: str | list[Message]
    expected: Expected = Expected()
    tags: tuple[str, ...] = ()
    app: str | None = None
    route: str | None = None
    source_trace_id: str | None = None

    @property
    def input_text(self) -> str:
        if isinstance(self.input, str):
            return self.input
        return "\n".join(m.content for m in self.input)

    def messages(self, system_prompt: str | None = None) -> list[dict[str, str]]:
        """The chat messages to send to the model endpoint."""
        body = ([{"role": "user", "content": self.input}] if isinstance(self.input, str)
                else [m.model_dump() for m in self.input])
        return ([{"role": "system", "content": system_prompt}] if system_prompt else []) + body


class GoldenFileError(ValueError):
    pass


def load_cases(path: Path) -> list[GoldenCase]:
    """Every case of a JSONL file, or an error naming the first bad line and why."""
    cases: list[GoldenCase] = []
    seen: set[str] = set()
    with path.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                case = GoldenCase.model_validate(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise GoldenFileError(f"{path}:{number}: not JSON: {exc}") from None
            except ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                where = ".".join(str(p) for p in first["loc"])
                raise GoldenFileError(f"{path}:{number}: {where}: {first['msg']}") from None
            if case.id in seen:
                raise GoldenFileError(f"{path}:{number}: duplicate case id {case.id!r}")
            seen.add(case.id)
            cases.append(case)
    if not cases:
        raise GoldenFileError(f"{path}: no cases")
    return cases


def dataset_version(cases: Iterable[GoldenCase]) -> str:
    """A content hash: the same cases give the same version, any edit a new one.

    >>> a, b = GoldenCase(id="a", input="x"), GoldenCase(id="b", input="y")
    >>> dataset_version([a, b]) == dataset_version([b, a]) != dataset_version([a])
    True
    """
    digest = hashlib.sha256()
    for case in sorted(cases, key=lambda c: c.id):
        digest.update(orjson.dumps(case.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()[:12]
