"""A local OpenAI-compatible SIMULATOR for tests and the demo — not a model.

It serves, on 127.0.0.1:

- ``POST /v1/chat/completions``: plays the model under test (a canned banking answer, or
  a refusal) and, when the request carries ``response_format`` of type ``json_schema``,
  the judge (a JSON object with ``score``, ``label``, ``reason`` that fits the schema).
- ``POST /v1/embeddings``: deterministic hashed bag-of-words vectors, ``float`` or
  ``base64`` (little-endian float32, as the real API).
- ``GET /sim/stats`` and ``POST /sim/reset``: request counters, so tests can assert
  budgets.

Switches (constructor or command line): latency, error rates (429, 500, hang past the
client's timeout, malformed JSON), and a scheduled quality drop: after
``drop_after`` chat requests for ``drop_model``, that model refuses with probability
``drop_rate``. Answers and refusals are a function of (seed, model, text), like a model
at temperature 0; faults are random (seeded), as transient ones are. A request can also
force a fault by carrying ``[[sim:429]]``, ``[[sim:500]]``, ``[[sim:timeout]]`` or
``[[sim:malformed]]`` in a message; ``[[sim:429-once:KEY]]`` fails only the first request
that carries KEY, so a retry succeeds.

Run: ``python -m pipeline.simulator --port 8089``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from aiohttp import web

_MARKER = re.compile(r"\[\[sim:([a-z0-9-]+)(?::([^\]]+))?\]\]")
_WORD = re.compile(r"[a-z0-9]+")
_REFUSAL_IN_ANSWER = re.compile(r"(?im)^\W*(?:i'?m sorry|i can(?:'?t|not)|sorry, but)")
_ANSWERS = (
    "You can do that in the app: open Cards, choose the card and follow the steps.",
    "Top-ups by bank transfer take one working day; card top-ups are instant.",
    "Your card should arrive within 5 working days. You can track it under Cards.",
    "Transfers are usually instant, but some banks take up to one working day.",
)
_REFUSAL = "I'm sorry, but I can't help with that request."


@dataclass
class SimulatorConfig:
    latency_ms: float = 0.0
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_timeout: float = 0.0
    rate_malformed: float = 0.0
    #: how long a "timeout" request hangs before answering (the client gives up first)
    hang_seconds: float = 30.0
    #: Retry-After sent with 429 (milliseconds; the openai SDK honours retry-after-ms)
    retry_after_ms: int = 20
    drop_model: str | None = None
    drop_after: int = 0
    drop_rate: float = 0.5
    base_refusal_rate: float = 0.03
    embedding_dim: int = 64
    seed: int = 0


@dataclass
class SimulatorStats:
    requests: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    chat_by_model: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"requests": dict(self.requests), "outcomes": dict(self.outcomes),
                "chat_by_model": dict(self.chat_by_model)}


def hashed_embedding(text: str, dim: int) -> np.ndarray:
    """Bag of hashed words, L2-normalised: texts sharing words are close.

    >>> v = hashed_embedding("card arrival", 16); round(float(v @ v), 6)
    1.0
    """
    vec = np.zeros(dim, dtype=np.float32)
    for word in _WORD.findall(text.lower()):
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
        vec[h % dim] += 1.0 if (h >> 32) & 1 else -1.0
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm else vec


class Simulator:
    """The aiohttp application and its counters; see the module docstring."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.stats = SimulatorStats()
        self._rng = random.Random(self.config.seed)
        self._once: set[str] = set()
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self._chat)
        self.app.router.add_post("/v1/embeddings", self._embeddings)
        self.app.router.add_get("/sim/stats", self._stats)
        self.app.router.add_post("/sim/reset", self._reset)

    # ------------------------------------------------------------------ faults
    def _fault(self, text: str) -> str | None:
        for kind, key in _MARKER.findall(text):
            if kind == "429-once":
                if key not in self._once:
                    self._once.add(key)
                    return "429"
                continue
            if kind in ("429", "500", "timeout", "malformed"):
                return kind
        c, r = self.config, self._rng.random()
        for kind, rate in (("429", c.rate_429), ("500", c.rate_500),
                           ("timeout", c.rate_timeout), ("malformed", c.rate_malformed)):
            if r < rate:
                return kind
            r -= rate
        return None

    async def _faulty(self, path: str, text: str) -> web.Response | str | None:
        self.stats.requests[path] += 1
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000)
        fault = self._fault(text)
        if fault is not None:
            self.stats.outcomes[fault] += 1
        if fault == "429":
            return web.json_response(
                {"error": {"message": "simulated rate limit", "type": "rate_limit_error"}},
                status=429, headers={"retry-after-ms": str(self.config.retry_after_ms)})
        if fault == "500":
            return web.json_response(
                {"error": {"message": "simulated server error", "type": "server_error"}},
                status=500)
        if fault == "timeout":
            await asyncio.sleep(self.config.hang_seconds)
        return fault

    # ------------------------------------------------------------------ routes
    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json(loads=orjson.loads)
        messages = body.get("messages") or []
        text = "\n".join(str(m.get("content") or "") for m in messages)
        early = await self._faulty("chat", text)
        if isinstance(early, web.Response):
            return early
        model = str(body.get("model") or "sim")
        self.stats.chat_by_model[model] += 1
        fmt = body.get("response_format") or {}
        content = (self._judge(text) if fmt.get("type") in ("json_schema", "json_object")
                   else self._answer(model, text))
        if early == "malformed":
            # Cut the answer where a judge's JSON would break.
            content = content[: max(1, len(content) // 2)]
        else:
            self.stats.outcomes["ok"] += 1
        prompt_tokens, completion_tokens = len(text) // 4 + 1, len(content) // 4 + 1
        payload = {
            "id": f"chatcmpl-sim-{self.stats.requests['chat']}",
            "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }
        return web.Response(body=orjson.dumps(payload), content_type="application/json")

    def _answer(self, model: str, text: str) -> str:
        c = self.config
        refusal_rate = c.base_refusal_rate
        if c.drop_model == model and self.stats.chat_by_model[model] > c.drop_after:
            refusal_rate = c.drop_rate
        # A function of (seed, model, text), like a model at temperature 0: how many
        # calls came before (the worker's sample, other tests) must not change the answer.
        digest = hashlib.blake2b(f"{c.seed}\0{model}\0{text}".encode(), digest_size=8).digest()
        if int.from_bytes(digest[1:], "big") / 2**56 < refusal_rate:
            return _REFUSAL
        return _ANSWERS[digest[0] % len(_ANSWERS)]

    def _judge(self, text: str) -> str:
        # The judged answer sits after the rubric; a refusal scores low, else by content.
        answer = text.rsplit("Answer:", 1)[-1]
        if _REFUSAL_IN_ANSWER.search(answer):
            verdict = {"score": 1, "label": "bad", "reason": "The answer declines to help."}
        else:
            digest = hashlib.blake2b(answer.encode(), digest_size=8).digest()
            score = 4 + digest[0] % 2
            verdict = {"score": score, "label": "good",
                       "reason": "The answer addresses the question."}
        return orjson.dumps(verdict).decode()

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        body = await request.json(loads=orjson.loads)
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        early = await self._faulty("embeddings", "\n".join(map(str, texts)))
        if isinstance(early, web.Response):
            return early
        dim = int(body.get("dimensions") or self.config.embedding_dim)
        b64 = body.get("encoding_format") == "base64"
        data = []
        for i, t in enumerate(texts):
            vec = hashed_embedding(str(t), dim)
            emb: Any = (base64.b64encode(vec.astype("<f4").tobytes()).decode() if b64
                        else vec.tolist())
            data.append({"object": "embedding", "index": i, "embedding": emb})
        tokens = sum(len(str(t)) // 4 + 1 for t in texts)
        if early is None:
            self.stats.outcomes["ok"] += 1
        payload = {"object": "list", "data": data, "model": body.get("model", "sim-embed"),
                   "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        raw = orjson.dumps(payload)
        if early == "malformed":
            raw = raw[: len(raw) // 2]
        return web.Response(body=raw, content_type="application/json")

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.as_dict())

    async def _reset(self, request: web.Request) -> web.Response:
        self.stats = SimulatorStats()
        return web.json_response({"ok": True})


class SimulatorThread:
    """The simulator on its own event loop in a daemon thread, for synchronous tests.

    >>> with SimulatorThread() as sim:
    ...     sim.base_url.startswith("http://127.0.0.1:")
    True
    """

    def __init__(self, config: SimulatorConfig | None = None, port: int = 0) -> None:
        self.sim = Simulator(config)
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, name="openai-simulator", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def stats(self) -> SimulatorStats:
        return self.sim.stats

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.sim.app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def start(self) -> SimulatorThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("simulator did not start within 10 s")
        return self

    def stop(self) -> None:
        async def _stop() -> None:
            assert self._runner is not None
            await self._runner.cleanup()

        # Hung "timeout" handlers are cancelled here, so stopping never waits for them.
        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m pipeline.simulator",
                                description="Local OpenAI-compatible SIMULATOR (not a model).")
    p.add_argument("--port", type=int, default=8089)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--rate-429", type=float, default=0.0)
    p.add_argument("--rate-500", type=float, default=0.0)
    p.add_argument("--rate-timeout", type=float, default=0.0)
    p.add_argument("--rate-malformed", type=float, default=0.0)
    p.add_argument("--hang-seconds", type=float, default=30.0)
    p.add_argument("--drop-model", default=None, help="model whose quality drops")
    p.add_argument("--drop-after", type=int, default=0, help="chat requests before the drop")
    p.add_argument("--drop-rate", type=float, default=0.5, help="refusal rate after the drop")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    config = SimulatorConfig(
        latency_ms=a.latency_ms, rate_429=a.rate_429, rate_500=a.rate_500,
        rate_timeout=a.rate_timeout, rate_malformed=a.rate_malformed,
        hang_seconds=a.hang_seconds, drop_model=a.drop_model, drop_after=a.drop_after,
        drop_rate=a.drop_rate, seed=a.seed)
    print(f"OpenAI-compatible SIMULATOR on http://127.0.0.1:{a.port}/v1", flush=True)
    web.run_app(Simulator(config).app, host="127.0.0.1", port=a.port, access_log=None,
                print=None)


if __name__ == "__main__":
    main()
