"""The dead-letter record: the original bytes, untouched, and why they were refused."""

from __future__ import annotations

from dataclasses import dataclass

REASON_HEADER = "driftline.reason"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    value: bytes
    key: bytes | None
    reason: str
    detail: str
    source_topic: str
    source_partition: int
    source_offset: int
    #: carried over from the source message (replay bookkeeping of ``driftline dlq replay``)
    extra_headers: tuple[tuple[str, bytes], ...] = ()

    def headers(self) -> list[tuple[str, bytes]]:
        return [*self.extra_headers,
            (REASON_HEADER, self.reason.encode()),
            ("driftline.detail", self.detail.encode()[:2000]),
            ("driftline.source", f"{self.source_topic}/{self.source_partition}/"
                                 f"{self.source_offset}".encode()),
        ]


def reason_of(headers: list[tuple[str, bytes]] | None) -> str:
    """The reason a dead-lettered message carries (for consumers of the DLQ)."""
    for name, value in headers or ():
        if name == REASON_HEADER:
            return value.decode()
    return "unknown"
