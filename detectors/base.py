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


@runtime_checkable
class EpisodicDetector(DriftDetector, Protocol):
    """A calibrated detector with an alarm lifecycle (``BernoulliCusum``, ``EmbeddingDrift``).

    One alarm per episode: after an alarm ``armed`` is false until ``acknowledge()`` or a
    new reference; ``reference_version`` and ``details`` travel with the alarm.
    """

    reference_version: str

    @property
    def armed(self) -> bool: ...

    @property
    def window(self) -> int: ...

    @property
    def details(self) -> dict[str, str]: ...

    def acknowledge(self) -> None: ...
