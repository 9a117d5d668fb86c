"""Incremental drift detectors and their per-segment registry (pure Python + numpy)."""

from detectors.adwin import Adwin
from detectors.base import DriftDetector
from detectors.embedding import EmbeddingDrift
from detectors.rate import BernoulliCusum
from detectors.registry import SegmentRegistry

__all__ = ["Adwin", "BernoulliCusum", "DriftDetector", "EmbeddingDrift", "SegmentRegistry"]
