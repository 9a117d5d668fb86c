"""The Slack summary of a golden run and its comparison with live traffic."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.golden.compare import SegmentComparison

MAX_SEGMENTS = 15


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary_message(comparisons: Sequence[SegmentComparison], *, report: str, window: str,
                    unmatched: Sequence[str] = (), gate: str | None = None) -> dict[str, Any]:
    """Block Kit payload: which segments differ from the golden set and why, the gate's
    verdict when a run produced this, and where the HTML report is.

    >>> m = summary_message([SegmentComparison("bot|a"), SegmentComparison("bot|b",
    ...     reasons=["judge scores lower than golden"])], report="/r/x.html", window="24h")
    >>> m["text"]
    'Golden vs live (24h): 1 of 2 segments differ. Report: /r/x.html'
    """
    flagged = [c for c in comparisons if c.flagged]
    text = (f"Golden vs live ({window}): {len(flagged)} of {len(comparisons)} segments "
            f"differ. Report: {report}")
    icon = ":warning:" if flagged else ":white_check_mark:"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "emoji": True, "text": _cut(
            f"{icon} Golden vs live: {len(flagged)} of {len(comparisons)} segments differ",
            150)}}]
    if gate is not None:
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": _cut(f"*Gate* {gate}", 3000)}})
    for c in flagged[:MAX_SEGMENTS]:
        lines = "\n".join(f"• {r}" for r in c.reasons)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(
            f"*`{c.segment}`*\n{lines}", 3000)}})
    if len(flagged) > MAX_SEGMENTS:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text":
                       f"… and {len(flagged) - MAX_SEGMENTS} more segments in the report"}})
    same = [c.segment for c in comparisons if not c.flagged]
    notes = []
    if same:
        notes.append("In line with golden: " + ", ".join(f"`{s}`" for s in same))
    if unmatched:
        notes.append("No golden results for: " + ", ".join(f"`{s}`" for s in unmatched))
    notes.append(f"Report: `{report}`")
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": _cut(n, 2000)} for n in notes]})
    return {"text": _cut(text, 3000), "blocks": blocks}
