"""Scorers: cheap heuristics on every trace, and on a sample an LLM judge and embeddings.

- :mod:`pipeline.scorers.heuristics` — PII, refusal, empty/truncated, format, length,
  latency, cost, in one pass per trace.
- :mod:`pipeline.scorers.sampler` — which traces go to the judge, within a budget.
- :mod:`pipeline.scorers.judge` — the LLM judge through the ``openai`` SDK.
- :mod:`pipeline.scorers.embedders` — texts to vectors, offline by default.
- :mod:`pipeline.scorers.rows` — the score row every scorer emits.
"""
