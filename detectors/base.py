"""The protocol every driftline detector follows (modelled on river's drift detectors)."""

from __future__ import annotations

from typing import Protocol, Self, runtime_checkable


@runtime_checkable
class DriftDetector(Protocol):
    """``update()`` one value at a time; ``drift_detected`` is true right after an alarm."""

    name: str

    def update(self, x: float) -> None: ...

    @property
    def drift_detected(self) -> bool: ...

    @property
    def statistic(self) -> float:
        """The test statistic at the last alarm (or the current one, for detectors that keep it)."""
        ...

    @property
    def threshold(self) -> float: ...

    def state(self) -> bytes:
        """An opaque snapshot for checkpointing; ``from_state`` restores it."""
        ...

    @classmethod
    def from_state(cls, blob: bytes) -> Self: ...
