"""Golden versus live, end to end: read both sides from ClickHouse, compare each live
segment with its golden results, store the differences as ``drift_events``, write the
HTML report and post the Slack summary."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console

from pipeline.config import Settings
from pipeline.golden.compare import (
    DEFAULT_CONFIG,
    CompareConfig,
    Coverage,
    SegmentComparison,
    calibrated_threshold,
    compare_segment,
    coverage,
)
from pipeline.golden.events import comparison_events, event_rows
from pipeline.golden.report import SegmentData, build_report
from pipeline.golden.sources import Window, golden_sides, live_sides, match_segment
from pipeline.golden.store import json_each_row
from pipeline.golden.summary import summary_message
from pipeline.sql_client import run_query


@dataclass(slots=True)
class ComparisonResult:
    compare_id: str
    window: Window
    segments: list[SegmentData] = field(default_factory=list)
    #: live segments with no golden results to compare with
    unmatched: list[str] = field(default_factory=list)
    report: Path | None = None
    events: int = 0
    slack_error: str = ""
    report_seconds: float = 0.0

    @property
    def comparisons(self) -> list[SegmentComparison]:
        return [s.comparison for s in self.segments]

    @property
    def flagged(self) -> list[str]:
        return [c.segment for c in self.comparisons if c.flagged]


def _window_label(window: Window) -> str:
    hours = (window.end - window.start).total_seconds() / 3600
    return f"last {hours:g} h"


def compare_with_live(settings: Settings, *, compare_id: str | None = None,
                      golden_run: str | None = None, now: datetime | None = None,
                      config: CompareConfig = DEFAULT_CONFIG, report: bool = True,
                      gate: str | None = None, console: Console | None = None
                      ) -> ComparisonResult:
    """Compare the live window ending ``now`` with the golden results (the last accepted
    run per segment, or ``golden_run``)."""
    console = console or Console(quiet=True)
    end = now or datetime.now(UTC)
    window = Window(end - settings.golden_window, end)
    compare_id = compare_id or f"compare-{end:%Y%m%dT%H%M%S}"
    result = ComparisonResult(compare_id, window)
    with console.status("reading the live window and golden results…"):
        result.segments, result.unmatched = matched_segments(settings, window, golden_run)
    if not result.segments:
        return result
    with console.status(f"embedding inputs ({settings.embedder})…"):
        embed_segments(settings, result.segments)
    for s in result.segments:
        s.comparison = compare_segment(
            s.live.segment, live_judge=s.live.judge, golden_judge=s.golden.judge,
            live_flags=s.live.flags, golden_flags=s.golden.flags,
            cover=segment_coverage(s, config), config=config)
    if report:
        assert settings.reports_dir is not None
        path = settings.reports_dir / f"{compare_id}.html"
        started = time.perf_counter()
        with console.status("building the Evidently report…"):
            result.report = build_report(
                path, result.segments, title=f"Golden vs live · {compare_id}",
                notes=[f"Live window: {window.start:%Y-%m-%d %H:%M} to "
                       f"{window.end:%Y-%m-%d %H:%M} UTC.",
                       *([f"Gate: {gate}"] if gate else []),
                       *([f"No golden results for: {', '.join(result.unmatched)}"]
                         if result.unmatched else [])])
        result.report_seconds = time.perf_counter() - started
    events = [e for s in result.segments for e in comparison_events(
        s.comparison, s.golden, s.live, compare_id=compare_id, at=end,
        report=str(result.report or ""), config=config)]
    if events:
        run_query(settings, json_each_row("drift_events", event_rows(events)), migrate=True)
    result.events = len(events)
    if settings.slack_webhook_url is not None:
        from sinks.slack_alerter import post_message

        result.slack_error = post_message(
            settings.slack_webhook_url.get_secret_value(),
            summary_message(result.comparisons, report=str(result.report or "not built"),
                            window=_window_label(window), unmatched=result.unmatched,
                            gate=gate))
    return result


def matched_segments(settings: Settings, window: Window, golden_run: str | None = None
                     ) -> tuple[list[SegmentData], list[str]]:
    """Every live segment of the window paired with its golden results, and the live
    segments that have none."""
    run_query(settings, "SELECT 1", migrate=True)  # a store nothing has written to yet
    golden = golden_sides(settings, golden_run)
    live = live_sides(settings, window, sample=settings.golden_live_sample)
    pairs, unmatched = [], []
    for segment in sorted(live):
        key = match_segment(segment, golden)
        if key is None:
            unmatched.append(segment)
        else:
            pairs.append(SegmentData(SegmentComparison(segment), golden[key], live[segment]))
    return pairs, unmatched


def segment_coverage(s: SegmentData, config: CompareConfig = DEFAULT_CONFIG
                     ) -> Coverage | None:
    """Input coverage of one embedded segment, or None with too few inputs to tell."""
    if s.golden_embeddings is None or s.live_embeddings is None \
            or len(s.golden_embeddings) < 10 or not len(s.live_embeddings) \
            or not all(s.golden.inputs):
        return None
    threshold = config.similarity_threshold or calibrated_threshold(
        s.golden_embeddings, config.coverage_quantile)
    return coverage(s.live_embeddings, s.golden_embeddings, s.live.inputs,
                    [r["id"] for r in s.live.rows], threshold=threshold)


def embed_segments(settings: Settings, segments: list[SegmentData]) -> None:
    """Embed every golden and live input in one pass of the configured embedder."""
    from pipeline.scorers.embedders import make_embedder

    texts: list[str] = []
    for s in segments:
        texts.extend(s.golden.inputs)
        texts.extend(s.live.inputs)
    if not texts:
        return
    api_key = settings.judge_api_key.get_secret_value() if settings.judge_api_key else None
    embedder = make_embedder(settings.embedder, base_url=settings.judge_base_url,
                             api_key=api_key, cache_dir=settings.embedder_cache_dir)
    # Inputs repeat across segments (one golden set, several models): embed each once.
    unique = list(dict.fromkeys(texts))
    vectors = embedder.embed(unique)
    index = {t: i for i, t in enumerate(unique)}
    for s in segments:
        s.golden_embeddings = vectors[[index[t] for t in s.golden.inputs]] \
            if s.golden.inputs else np.zeros((0, vectors.shape[1]), dtype=np.float32)
        s.live_embeddings = vectors[[index[t] for t in s.live.inputs]] \
            if s.live.inputs else np.zeros((0, vectors.shape[1]), dtype=np.float32)
