"""Checkpointing shared by every detector: the whole object, pickled."""

from __future__ import annotations

import pickle
from typing import Self


class PickleSnapshot:
    """``state()`` / ``from_state()`` for a detector whose attributes are its state.

    Snapshots come only from driftline's own changelog topic, never from producers, so
    unpickling them is no more trusted than the worker's own code.
    """

    def state(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_state(cls, blob: bytes) -> Self:
        obj = pickle.loads(blob)
        if not isinstance(obj, cls):
            raise TypeError(f"snapshot holds {type(obj).__name__}, not {cls.__name__}")
        return obj
