"""The detect-suite's scenarios: BANKING77 intents embedded once, synthetic score streams."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.bench.common import DATA
from pipeline.bench.embedding import DEFAULT_EMBEDDER, cached_embeddings


@dataclass
class Scenario:
    name: str
    signal: str  # embedding | judge | flag | score
    change_at: int  # -1: no change (a control)
    make: Callable[[np.random.Generator], np.ndarray | list[Any]]  # one stream per run
    reference: Any = None
    control: str = ""  # the control scenario that gives this one's false-alarm numbers
    note: str = ""
    #: in a control: where its change scenarios change, to measure the "delay" a
    #: detector shows when nothing changes (its false alarms alone)
    probe_at: int = -1


class Banking77:
    """BANKING77 texts, embedded once by ``embedder`` (a ``DRIFTLINE_EMBEDDER`` spec), and
    the intent sets the scenarios draw from."""

    def __init__(self, seed: int = 0, embedder: str = DEFAULT_EMBEDDER) -> None:
        rows: list[tuple[str, str]] = []
        for split in ("train", "test"):
            with (DATA / f"{split}.csv").open(newline="", encoding="utf-8") as fh:
                rows += [(r["text"], r["category"]) for r in csv.DictReader(fh)]
        self.texts = [t for t, _ in rows]
        self.intents = np.array([c for _, c in rows])
        names = sorted(set(self.intents))
        rng = np.random.default_rng(seed)
        # the watched app serves 40 intents, among them the whole "card" family
        self.family = [n for n in names if n.startswith("card_")]
        others = [n for n in names if n not in self.family]
        rng.shuffle(others)
        self.known = self.family + others[: 40 - len(self.family)]
        self.novel = others[40 - len(self.family):]
        self.embedder = embedder
        self.vectors = cached_embeddings(self.texts, embedder)
        known_rows = np.flatnonzero(np.isin(self.intents, self.known))
        rng.shuffle(known_rows)
        self.reference_rows = known_rows[:1000]
        self.pool = known_rows[1000:]  # live traffic of the known intents, unseen by the reference
        self.family_pool = self.pool[np.isin(self.intents[self.pool], self.family)]
        self.by_novel = {n: np.flatnonzero(self.intents == n) for n in self.novel}

    @property
    def reference(self) -> np.ndarray:
        return self.vectors[self.reference_rows]

    def stream(self, rng: np.random.Generator, n: int, change_at: int,
               mix: Callable[[np.ndarray], np.ndarray], source: np.ndarray) -> np.ndarray:
        """``n`` vectors from the known pool; from ``change_at`` on, each is replaced by
        one drawn from ``source`` with probability ``mix(t - change_at)``."""
        idx = rng.choice(self.pool, size=n)
        if change_at >= 0:
            t = np.arange(n) - change_at
            p = np.where(t >= 0, mix(np.maximum(t, 0)), 0.0)
            swap = rng.random(n) < p
            idx[swap] = rng.choice(source, size=int(swap.sum()))
        return self.vectors[idx]


def scenarios(b77: Banking77, quick: bool) -> list[Scenario]:
    pre, post, control_len = (500, 1500, 4000) if quick else (1000, 3000, 10_000)
    novel = b77.by_novel[b77.novel[0]]
    n = pre + post
    out = [
        Scenario("no change (BANKING77)", "embedding", -1,
                 lambda r: b77.stream(r, control_len, -1, lambda t: t, novel),
                 b77.reference, note=f"{len(b77.known)} known intents, reference 1,000",
                 probe_at=pre),
    ]
    for share in (0.05, 0.10, 0.30):
        out.append(Scenario(
            f"new intent at {share:.0%}", "embedding", pre,
            lambda r, s=share: b77.stream(r, n, pre, lambda t: np.full(len(t), s), novel),
            b77.reference, control="no change (BANKING77)",
            note=f"`{b77.novel[0]}` appears, abrupt"))
    out.append(Scenario(
        "new intent 0 to 30 % (gradual)", "embedding", pre,
        lambda r: b77.stream(r, n, pre, lambda t: np.minimum(t / post, 1) * 0.3, novel),
        b77.reference, control="no change (BANKING77)", note="linear ramp over the stream"))
    share = len(b77.family_pool) / len(b77.pool)
    out.append(Scenario(
        "card family surges", "embedding", pre,
        lambda r: b77.stream(r, n, pre, lambda t: np.full(len(t), 0.5), b77.family_pool),
        b77.reference, control="no change (BANKING77)",
        note=f"card_* intents {share:.0%} -> {share + 0.5 * (1 - share):.0%} of traffic"))

    def bern(p_before: float, p_after: float, length: int, at: int) -> Callable[..., Any]:
        def make(r: np.random.Generator) -> np.ndarray:
            p = np.where(np.arange(length) < at, p_before, p_after) if at >= 0 else p_before
            return (r.random(length) < p).astype(float)
        return make

    ref_rng = np.random.default_rng(12345)
    judge_ref = (ref_rng.random(1000) < 0.90).astype(float)
    flag_ref = (ref_rng.random(1000) < 0.03).astype(float)
    score_ref = np.clip(ref_rng.normal(0.6, 0.1, 1000), 0, 1)
    syn_post = 2000 if quick else 6000

    def gauss(shift: float, length: int, at: int) -> Callable[..., Any]:
        def make(r: np.random.Generator) -> np.ndarray:
            mu = np.where(np.arange(length) < at, 0.6, 0.6 + shift) if at >= 0 else 0.6
            return np.clip(r.normal(mu, 0.1, length), 0, 1)
        return make

    out += [
        Scenario("no change (judge pass 0.90)", "judge", -1, bern(0.9, 0.9, control_len, -1),
                 judge_ref, probe_at=pre),
        Scenario("judge pass rate 0.90 -> 0.85", "judge", pre,
                 bern(0.9, 0.85, pre + syn_post, pre), judge_ref,
                 control="no change (judge pass 0.90)"),
        Scenario("no change (flag rate 0.03)", "flag", -1, bern(0.03, 0.03, control_len, -1),
                 flag_ref, probe_at=pre),
        Scenario("flag rate 0.03 -> 0.06", "flag", pre, bern(0.03, 0.06, pre + syn_post, pre),
                 flag_ref, control="no change (flag rate 0.03)"),
        Scenario("no change (score N(0.6, 0.1))", "score", -1, gauss(0, control_len, -1),
                 score_ref, probe_at=pre),
        Scenario("score mean +0.5 sd", "score", pre, gauss(0.05, pre + syn_post, pre),
                 score_ref, control="no change (score N(0.6, 0.1))"),
    ]
    return out


