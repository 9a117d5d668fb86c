"""Incremental drift detectors and their per-segment registry (pure Python + numpy)."""

from detectors.adwin import Adwin
from detectors.base import DriftDetector
from detectors.registry import SegmentRegistry

__all__ = ["Adwin", "DriftDetector", "SegmentRegistry"]
