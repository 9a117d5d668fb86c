"""The plain JSON contract: the message is already the contract dict."""

from __future__ import annotations

from typing import Any

NAME = "plain"


def to_contract(obj: dict[str, Any]) -> dict[str, Any]:
    """The plain contract needs no mapping; validation happens in :func:`build_trace`."""
    return obj
