"""Replays golden cases through the model endpoint: bounded concurrency, resumable.

Each finished case is appended to ``<runs_dir>/<run_id>.jsonl`` as it completes, so a
run killed half-way resumes with the same run id and only sends what is missing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import openai
import orjson

from pipeline.golden.cases import GoldenCase


@dataclass(slots=True)
class ModelAnswer:
    case_id: str
    output: str = ""
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    error: str = ""


@dataclass(slots=True)
class CaseResult:
    answer: ModelAnswer
    passed: bool
    judge_score: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    cost_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The model under test; the same settings as production, set per run."""

    model: str
    base_url: str | None = None
    api_key: str = "not-needed"
    system_prompt: str | None = None
    temperature: float = 0.0
    timeout: float = 60.0
    max_retries: int = 3

    def client(self) -> openai.AsyncOpenAI:
        # The SDK retries 408/409/429/5xx and timeouts with backoff itself.
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key,
                                  timeout=self.timeout, max_retries=self.max_retries)


async def ask(client: openai.AsyncOpenAI, endpoint: Endpoint, case: GoldenCase) -> ModelAnswer:
    """One case through the model; a failure is recorded on the answer, never raised."""
    started = time.perf_counter()
    try:
        response = await client.chat.completions.create(
            model=endpoint.model, messages=case.messages(endpoint.system_prompt),  # type: ignore[arg-type]
            temperature=endpoint.temperature)
    except openai.OpenAIError as exc:
        return ModelAnswer(case.id, latency_ms=(time.perf_counter() - started) * 1000,
                           error=f"{type(exc).__name__}: {exc}"[:500])
    usage = response.usage
    return ModelAnswer(
        case.id, output=response.choices[0].message.content or "",
        latency_ms=(time.perf_counter() - started) * 1000,
        input_tokens=usage.prompt_tokens if usage else 0,
        output_tokens=usage.completion_tokens if usage else 0)


Scorer = Callable[[GoldenCase, ModelAnswer], Awaitable[CaseResult]]


def load_checkpoint(path: Path) -> dict[str, CaseResult]:
    done: dict[str, CaseResult] = {}
    if not path.exists():
        return done
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            raw: dict[str, Any] = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a line cut by a crash: that case runs again
        raw["answer"] = ModelAnswer(**raw["answer"])
        result = CaseResult(**raw)
        done[result.answer.case_id] = result
    return done


async def run_cases(
    cases: Sequence[GoldenCase],
    endpoint: Endpoint,
    score: Scorer,
    *,
    checkpoint: Path,
    concurrency: int = 16,
    on_done: Callable[[CaseResult], None] = lambda r: None,
) -> list[CaseResult]:
    """Every case's result, in the order of ``cases``; finished ones come from the
    checkpoint, the rest from the endpoint."""
    done = load_checkpoint(checkpoint)
    for result in done.values():
        on_done(result)
    todo = [c for c in cases if c.id not in done]
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    client = endpoint.client()
    queue: asyncio.Queue[GoldenCase] = asyncio.Queue()
    for case in todo:
        queue.put_nowait(case)

    with checkpoint.open("ab") as sink:
        async def worker() -> None:
            while True:
                try:
                    case = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                answer = await ask(client, endpoint, case)
                result = await score(case, answer)
                done[case.id] = result
                sink.write(orjson.dumps(asdict(result)) + b"\n")
                sink.flush()
                on_done(result)

        try:
            await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
        finally:
            await client.close()
    return [done[c.id] for c in cases]
