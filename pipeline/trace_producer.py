"""A trace publisher for Python apps that never blocks the app's request path.

``send()`` serialises the trace, hands it to librdkafka's bounded local queue and returns
at once; when the queue is full (broker down or slow) the trace is dropped and counted,
never waited for. A background thread serves delivery callbacks, which count what the
broker acknowledged and what it refused. ``close()`` flushes what is queued.

Imports only confluent-kafka, orjson and ``schemas`` (no worker settings), so an app can
use it without the worker's dependencies.

>>> p = TraceProducer("127.0.0.1:1", max_queue=1, start=False,   # no broker needed
...                   config={"log_level": 0})
>>> p.send({"trace_id": "t", "app": "bot", "model": "m"}), p.send({"trace_id": "u"})
(True, False)
>>> p.stats()["last_error"]
'local queue full'
>>> p.close(timeout=0)
1
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message, Producer

from schemas.trace import MISSING, SEGMENT_SEPARATOR


@dataclass(slots=True)
class ProducerStats:
    """Counters, updated from the app's thread (accepted, dropped) and the poll thread."""

    accepted: int = 0    # in the local queue
    delivered: int = 0   # acknowledged by the broker
    failed: int = 0      # refused, or timed out in the queue (message.timeout.ms)
    dropped: int = 0     # never queued: queue full, producer closed, or not serialisable
    last_error: str = ""


class TraceProducer:
    """Publishes traces keyed by segment, like ``driftline produce``, without blocking.

    ``max_queue`` bounds the local queue (messages); ``delivery_timeout_ms`` is how long a
    queued trace may wait for the broker before it counts as failed. ``on_delivery`` is
    called from the poll thread with ``(error or None, message)``; keep it short.
    """

    def __init__(
        self,
        bootstrap_servers: str = "127.0.0.1:9092",
        topic: str = "driftline.traces",
        *,
        segment_fields: tuple[str, ...] = ("app", "model"),
        max_queue: int = 100_000,
        delivery_timeout_ms: int = 60_000,
        on_delivery: Callable[[KafkaError | None, Message], None] | None = None,
        config: dict[str, Any] | None = None,
        start: bool = True,
    ) -> None:
        self.topic = topic
        self.segment_fields = segment_fields
        self._stats = ProducerStats()
        self._lock = threading.Lock()
        self._user_callback = on_delivery
        settings: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            # the Java client's partitioner, as the worker and `driftline produce` use:
            # a segment lands on the partition that holds its detector state
            "partitioner": "murmur2_random",
            "compression.type": "zstd",
            "linger.ms": 20,
            "enable.idempotence": True,
            # the bound: produce() raises BufferError instead of growing without limit
            "queue.buffering.max.messages": max_queue,
            "message.timeout.ms": delivery_timeout_ms,
        }
        settings.update(config or {})
        self._producer = Producer(settings)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._poll_loop, name="driftline-producer-poll",
                                        daemon=True)
        if start:
            self._thread.start()

    def send(self, trace: dict[str, Any] | bytes, key: str | bytes | None = None) -> bool:
        """Queue one trace; ``False`` if it was dropped (queue full, closed, unserialisable).

        ``trace`` is a contract dict (its segment becomes the key) or already-encoded bytes
        (then pass ``key``).
        """
        if self._closed.is_set():
            return self._drop("producer is closed")
        try:
            if isinstance(trace, bytes | bytearray):
                value = bytes(trace)
            else:
                value = orjson.dumps(trace)
                if key is None:
                    key = self.segment_key(trace)
            self._producer.produce(self.topic, value=value, key=key,
                                   on_delivery=self._delivered)
        except BufferError:
            return self._drop("local queue full")
        except (TypeError, ValueError) as exc:  # orjson, or a bad key type
            return self._drop(f"cannot encode trace: {exc}")
        with self._lock:
            self._stats.accepted += 1
        return True

    def segment_key(self, trace: dict[str, Any]) -> str:
        """The Kafka key: same rule as :meth:`schemas.trace.Trace.segment_key`."""
        return SEGMENT_SEPARATOR.join(str(trace.get(f) or MISSING) for f in self.segment_fields)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            out = asdict(self._stats)
        out["queued"] = len(self._producer)
        return out

    def flush(self, timeout: float = 10.0) -> int:
        """Wait up to ``timeout`` s for queued traces; return how many are still queued."""
        return self._producer.flush(timeout)

    def close(self, timeout: float = 10.0) -> int:
        """Stop accepting, flush, stop the poll thread; return how many were left queued."""
        self._closed.set()
        if self._thread.is_alive():
            self._thread.join()
        return self._producer.flush(timeout)

    def __enter__(self) -> TraceProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _poll_loop(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.1)

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        with self._lock:
            if err is None:
                self._stats.delivered += 1
            else:
                self._stats.failed += 1
                self._stats.last_error = str(err)
        if self._user_callback is not None:
            try:
                self._user_callback(err, msg)
            except Exception as exc:  # an app's callback must not kill the poll thread
                with self._lock:
                    self._stats.last_error = f"on_delivery raised {exc!r}"

    def _drop(self, why: str) -> bool:
        with self._lock:
            self._stats.dropped += 1
            self._stats.last_error = why
        return False
