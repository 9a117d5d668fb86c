"""Operator commands to the workers, through Kafka: ``driftline drift ack``.

A command is a JSON message on the control topic, keyed by segment. The control topic
has as many partitions as the traces topic, and Faust assigns topics of equal partition
counts together, so the command reaches the one worker that holds the segment's
detectors, however many workers run. That worker re-arms the detectors and marks the
segment's open alarms acknowledged in ClickHouse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from clickhouse_connect.driver.client import Client

#: Re-insert the open alarms with acknowledged = 1; drift_events is a ReplacingMergeTree
#: on ingested_at, so the new rows win under FINAL. The filter sits in a subquery because
#: ClickHouse resolves REPLACE's aliases in WHERE (acknowledged would already read 1).
ACK_SQL = """
INSERT INTO drift_events
SELECT * REPLACE (toUInt8(1) AS acknowledged, {by:String} AS acknowledged_by,
                  now64(3) AS ingested_at)
FROM (SELECT * FROM drift_events FINAL
      WHERE segment = {segment:String} AND acknowledged = 0
        AND ({signal:String} = '' OR signal = {signal:String}))
"""


@dataclass(frozen=True, slots=True)
class Ack:
    segment: str
    signal: str = ""  # "" = every signal of the segment
    by: str = ""
    at: str = ""

    def encode(self) -> tuple[bytes, bytes]:
        """(key, value) for the control topic."""
        at = self.at or datetime.now(UTC).isoformat()
        return self.segment.encode(), orjson.dumps({
            "command": "ack", "segment": self.segment, "signal": self.signal,
            "by": self.by, "at": at})

    @classmethod
    def decode(cls, value: bytes) -> Ack | None:
        """The command in ``value``, or None for anything else (logged and skipped)."""
        try:
            body = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(body, dict) or body.get("command") != "ack" \
                or not isinstance(body.get("segment"), str):
            return None
        return cls(body["segment"], str(body.get("signal") or ""), str(body.get("by") or ""),
                   str(body.get("at") or ""))


def mark_acknowledged(client: Client, ack: Ack) -> None:
    client.command(ACK_SQL, parameters={"segment": ack.segment, "signal": ack.signal,
                                        "by": ack.by})
