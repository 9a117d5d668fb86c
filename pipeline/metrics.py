"""Counters the worker keeps and serves on its web port."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class Counters:
    started: bool = False
    consumed: int = 0
    stored: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)
    alarms: int = 0
    sampled: int = 0
    judged: int = 0
    judge_errors: int = 0
    judge_cost_usd: float = 0.0
    embedded: int = 0
    embed_errors: int = 0
    duplicates: int = 0
    rerouted: int = 0
    skipped_spans: int = 0
    truncated: int = 0
    restored_segments: int = 0
    batches: int = 0
    last_batch_size: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "consumed": self.consumed,
            "stored": self.stored,
            "dead_lettered": dict(self.dead_lettered),
            "dead_lettered_total": sum(self.dead_lettered.values()),
            "alarms": self.alarms,
            "sampled": self.sampled,
            "judged": self.judged,
            "judge_errors": self.judge_errors,
            "judge_cost_usd": round(self.judge_cost_usd, 6),
            "embedded": self.embedded,
            "duplicates": self.duplicates,
            "rerouted": self.rerouted,
            "skipped_spans": self.skipped_spans,
            "truncated": self.truncated,
            "restored_segments": self.restored_segments,
            "batches": self.batches,
            "last_batch_size": self.last_batch_size,
        }
