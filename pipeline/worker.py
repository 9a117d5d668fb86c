"""The Faust app: consume traces, store them, dead-letter the bad ones, detect drift."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import partial

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from detectors.adwin import Adwin
from detectors.base import DriftDetector
from detectors.embedding import EmbeddingDrift
from detectors.rate import BernoulliCusum
from detectors.registry import SegmentRegistry
from pipeline.batch_send import send_batched
from pipeline.bulk_consumer import BulkApp, BulkConsumer, bulk_transport, offsets_of
from pipeline.config import Settings
from pipeline.control import Ack, mark_acknowledged
from pipeline.ingest import (
    GUARDRAIL_SIGNAL,
    REFUSAL_SIGNAL,
    BatchOutcome,
    Ingestor,
    partition_of,
)
from pipeline.logs import logging_config
from pipeline.metrics import Counters
from pipeline.recent_ids import RecentIds
from pipeline.sampled import EMBEDDING_SIGNAL, JUDGE_SIGNAL, score_sampled
from pipeline.scorers.embedders import Embedder, make_embedder
from pipeline.scorers.heuristics import DEFAULT_PRICES, PriceTable
from pipeline.scorers.judge import Judge, load_rubric
from pipeline.scorers.sampler import Budget, Sampler
from pipeline.state_table import DetectorStateTable
from pipeline.topics import check_broker, ensure_topics
from pipeline.web import register_views
from schemas.events import DriftEvent
from sinks.alerts_policy import AlertPolicy
from sinks.alerts_store import ClickHouseAlertStore
from sinks.clickhouse_client import connect, redact
from sinks.clickhouse_schema import apply_migrations
from sinks.clickhouse_writer import ClickHouseWriter, WriteTicket
from sinks.slack_alerter import SlackAlerter

log = logging.getLogger("driftline.worker")


class App(BulkApp, faust.App):
    """The Faust app, its traces topic consumed in batches (:mod:`pipeline.bulk_consumer`)."""


#: Seconds between two purges of the embedded engine's allocator (see ClickHouseWriter).
ENGINE_PURGE_SECONDS = 60.0

#: Traces processed between two yields to the event loop (~10-25 ms of CPU).
PROCESS_SLICE = 200


def kafka_producer(app: faust.App) -> AIOKafkaProducer:
    """The aiokafka producer under Faust's, started with the app."""
    return app.producer._ensure_producer()  # type: ignore[attr-defined,no-any-return]


def state_key(segment: str, signal: str) -> bytes:
    """The detector-state table's key: one entry per (segment, signal)."""
    return f"{segment}\x1f{signal}".encode()


def detector_factories(settings: Settings) -> dict[str, Callable[[], DriftDetector]]:
    """The detector of each signal, as configured (one per segment and signal)."""
    return {
        REFUSAL_SIGNAL: partial(Adwin, settings.adwin_delta),
        GUARDRAIL_SIGNAL: partial(BernoulliCusum, ert=settings.flag_ert,
                                  warmup=settings.flag_warmup,
                                  min_p0=settings.flag_min_rate),
        JUDGE_SIGNAL: partial(Adwin, settings.adwin_delta),
        EMBEDDING_SIGNAL: partial(EmbeddingDrift, ert=settings.embedding_ert,
                                  warmup=settings.embedding_warmup,
                                  defer_calibration=True),
    }


def build_app(settings: Settings, writer: ClickHouseWriter,
              alerter: SlackAlerter | None = None,
              embedder: Embedder | None = None) -> faust.App:
    app = App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        autodiscover=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.kafka_session_timeout,
        broker_heartbeat_interval=min(3.0, settings.kafka_session_timeout / 3),
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        logging_config=logging_config(settings.log_level, settings.log_format),
    )
    judge = make_judge(settings)
    scoring_on = judge is not None or embedder is not None
    app.bulk_transport_cls = bulk_transport(
        {settings.traces_topic: settings.ingest_buffer,
         **({settings.scoring_topic: settings.scoring_buffer} if scoring_on else {})})
    counters = Counters()
    traces = app.topic(settings.traces_topic, key_serializer="raw", value_serializer="raw",
                       partitions=settings.topic_partitions)
    scoring = app.topic(settings.scoring_topic, key_serializer="raw", value_serializer="raw",
                        partitions=settings.topic_partitions)
    state = app.tables.add(DetectorStateTable(
        app, name="detector-state", beacon=app.tables.beacon,
        key_type=bytes, value_type=bytes,
        partitions=settings.topic_partitions,
        help="detector snapshots per (segment, signal)"))

    def load_state(segment: str, signal: str) -> bytes | None:
        blob = state.get(state_key(segment, signal))
        if blob is not None:
            log.info("detector state restored", extra={"segment": segment, "signal": signal})
        return blob

    factories = detector_factories(settings)
    for factory in factories.values():
        factory()  # imports river and builds tables now, not on the first trace
    registry = SegmentRegistry(factories, loader=load_state)
    ingestor = Ingestor(
        segment_fields=settings.segment_fields,
        registry=registry,
        counters=counters,
        limits=settings.limits(),
        fmt=settings.traces_format,
        sampler=(Sampler(settings.sample_rate, settings.sample_rates, settings.sample_salt)
                 if judge is not None or embedder is not None else None),
        recent=RecentIds(settings.dedup_window),
        partitions=settings.topic_partitions,
        worker=f"{socket.gethostname()}:{os.getpid()}",
    )
    segment_partition: dict[str, int] = {}

    @app.on_partitions_revoked.connect
    async def forget_moved_segments(app: faust.App, revoked: set, **_: object) -> None:
        # A segment whose partition moved is now updated elsewhere: reload it from the
        # table if it ever comes back, never from this process's stale copy.
        gone = {tp.partition for tp in revoked if tp.topic == settings.traces_topic}
        app.consumer.drop_revoked(  # type: ignore[attr-defined]
            {tp for tp in revoked if tp.topic == settings.traces_topic})
        for segment, partition in list(segment_partition.items()):
            if partition in gone:
                registry.forget(segment)
                del segment_partition[segment]

    def snapshot(segments: Mapping[str, int]) -> list[tuple[str, str, int, bytes]]:
        """The detectors of ``segments`` that moved, as they are now, with the partition
        each segment's traces use."""
        return [(segment, signal, segments[segment], blob)
                for segment, signal, blob in registry.take_dirty(segments)]

    def save_state(snapshots: list[tuple[str, str, int, bytes]]) -> None:
        # Into the partition the segment's traces arrive on, so state follows a rebalance.
        for segment, signal, partition, blob in snapshots:
            segment_partition[segment] = partition
            state.set_in_partition(partition, state_key(segment, signal), blob)
        counters.restored_segments = registry.restored

    def announce(events: list[DriftEvent]) -> None:
        counters.alarms += len(events)
        if alerter is not None:
            alerter.handle(events)  # queues; never waits on Slack
        for event in events:
            log.warning("drift detected", extra={
                "segment": event.segment, "signal": event.signal,
                "detector": event.detector, "trace_id": event.trace_id,
                "mean_before": round(event.mean_before, 4),
                "mean_after": round(event.mean_after, 4)})

    @app.agent(traces, name="ingest")
    async def ingest(stream: faust.Stream) -> None:
        # Subscribes the traces topic (and co-partitions it with the state table and the
        # control topic); its records are diverted to ingest_batches by BulkConsumer.
        async for event in stream.events():
            raise RuntimeError(f"a traces record reached the stream, not the bulk path: "
                               f"{event.message.tp}")

    async def process(records: list[ConsumerRecord]) -> tuple[BatchOutcome,
                                                      list[tuple[str, str, int, bytes]], bool]:
        """The batch's outcome, its detector snapshots, and whether it was processed
        whole (only then may its records be acked)."""
        # In slices with a yield between them: a 2,000-trace batch is ~150 ms of CPU, and
        # every other task (the ClickHouse flusher, the judge's HTTP calls, the fetcher)
        # advances one step per yield. One yield per batch let stored rows wait 7-8 s for
        # their flush, measured, while the clickhouse thread sat idle.
        outcome = BatchOutcome()
        generation = app.consumer_generation_id
        whole = True
        for start in range(0, len(records), PROCESS_SLICE):
            if app.consumer_generation_id != generation:
                # A rebalance ran during the yield: stop here and ack none of the batch,
                # so its records are read again from the committed offsets, here or by
                # their new owner (the part processed is stored twice, once per trace_id
                # in ClickHouse). Acking it would commit records never processed.
                whole = False
                break
            ingestor.process_into(outcome, records[start:start + PROCESS_SLICE])
            await asyncio.sleep(0)
        ingestor.close(outcome)
        return outcome, snapshot(outcome.segments), whole

    def home(segment: bytes) -> int:
        # Sampled and rerouted traces are keyed by segment: they go to the partition that
        # holds the segment's detectors.
        return partition_of(segment.decode(), settings.topic_partitions)

    async def queue_sends(outcome: BatchOutcome) -> list[asyncio.Future[object]]:
        """Put a batch's dead letters, sampled and rerouted traces on the producer; the
        futures resolve once Kafka has them."""
        producer = kafka_producer(app)
        # A dead letter goes to the partition its record came from (the topics are
        # co-partitioned, checked at start-up), keyed as it was.
        sends = await send_batched(producer, settings.dlq_topic, (
            (d.source_partition, d.key, d.value, d.headers()) for d in outcome.dead))
        sends += await send_batched(producer, settings.scoring_topic, (
            (home(k), k, v, []) for k, v in outcome.sampled))
        sends += await send_batched(producer, settings.traces_topic, (
            (home(k), k, v, h) for k, v, h in outcome.rerouted))
        return sends

    @app.task
    async def ingest_batches() -> None:
        consumer: BulkConsumer = app.consumer  # type: ignore[assignment]
        counters.started = True
        previous: asyncio.Future[None] | None = None
        queued: asyncio.Future[list[asyncio.Future[object]]] | None = None
        while not app.should_stop:
            messages = await consumer.take(settings.traces_topic, settings.batch_size,
                                           settings.batch_seconds)
            if not messages:
                continue
            if previous is not None and previous.done():
                previous.result()  # a failed completion stops the worker, loudly
            # On the event loop, not a thread: a thread measured half the throughput
            # (GIL hand-offs with the fetcher).
            outcome, snapshots, whole = await process(messages)
            if queued is not None:
                # The previous batch's messages go on the producer first, so each
                # partition keeps its order; one batch queues while the next is parsed.
                await queued
            # In the background: aiokafka takes a partition's next record batch only once
            # the one before it left in a produce request, so queueing a batch's sends
            # waits a round trip per record batch, and awaited here that was ~10 % of the
            # drain with the loop idle (measured).
            queued = asyncio.ensure_future(queue_sends(outcome))
            # Waits only while the writer's buffer is full; the rows are stored while the
            # next batch is parsed (the ClickHouse thread runs beside this one).
            stored = await writer.submit(outcome.tables)
            # Offsets, not the records: batches wait here for their rows to be stored,
            # 4-40 of them at a time in a drain (measured), and acking needs none of
            # their records or values.
            previous = asyncio.ensure_future(complete(
                offsets_of(messages) if whole else {}, len(messages), outcome, stored,
                queued, snapshots, previous, consumer))
        if previous is not None:
            await previous

    async def complete(offsets: dict[tuple[str, int], list[int]], size: int,
                       outcome: BatchOutcome, stored: WriteTicket,
                       queued: asyncio.Future[list[asyncio.Future[object]]],
                       snapshots: list[tuple[str, str, int, bytes]],
                       previous: asyncio.Future[None] | None,
                       consumer: BulkConsumer) -> None:
        """Ack a batch once its rows are stored and its messages delivered, in order."""
        if previous is not None:
            await previous  # batches complete in order, so the newest snapshot wins
        await stored
        sends = await queued
        if sends:
            await asyncio.gather(*sends)
        save_state(snapshots)
        for dead in outcome.dead:
            counters.dead_lettered[dead.reason] += 1
        counters.sampled += len(outcome.sampled)
        counters.stored += len(outcome.traces.rows)
        counters.batches += 1
        counters.last_batch_size = size
        announce(outcome.events)
        # Only now, with rows stored and dead letters delivered, may offsets advance.
        consumer.ack_offsets(offsets)

    if scoring_on:
        @app.agent(scoring, name="score")
        async def scoring_subscription(stream: faust.Stream) -> None:
            # Subscribes the scoring topic; its records are diverted to scoring_batches.
            async for event in stream.events():
                raise RuntimeError(f"a scoring record reached the stream, not the bulk "
                                   f"path: {event.message.tp}")

        @app.task
        async def scoring_batches() -> None:
            # Its own buffer and its own pace: a slow judge lets the sample queue up in
            # the scoring topic (its partitions pause), never holds back ingestion.
            consumer: BulkConsumer = app.consumer  # type: ignore[assignment]
            while not app.should_stop:
                messages = await consumer.take(settings.scoring_topic, 1024, 1.0)
                if not messages:
                    continue
                outcome = await score_sampled(judge, embedder, registry,
                                              [m.value for m in messages])
                # Stored with the next timed or full flush, not forced now: a forced
                # flush per scoring batch (often a handful of rows) made every table an
                # insert each time, and small inserts cost ClickHouse CPU per row.
                await (await writer.submit([outcome.scores, outcome.drift]))
                save_state(snapshot({m.key.decode(): m.partition
                                     for m in messages if m.key}))
                counters.judged += outcome.judged
                counters.judge_errors += outcome.judge_errors
                counters.embedded += outcome.embedded
                counters.embed_errors += outcome.embed_errors
                counters.judge_cost_usd += outcome.cost_usd
                announce(outcome.events)
                consumer.ack_all(messages)

    control = app.topic(settings.control_topic, key_serializer="raw", value_serializer="raw",
                        partitions=settings.topic_partitions)

    @app.agent(control, name="control")
    async def control_commands(stream: faust.Stream) -> None:
        # Same partition count as the traces topic: Faust assigns both together, so a
        # command keyed by segment lands on the worker that holds that segment.
        async for event in stream.events():
            ack = Ack.decode(event.value)
            if ack is None:
                log.warning("control message ignored", extra={"value": event.value[:200]})
                continue
            rearmed = registry.acknowledge(ack.segment, ack.signal or None)
            save_state(snapshot({ack.segment: event.message.partition}))
            await writer.run(mark_acknowledged, writer.client, ack)
            log.info("drift acknowledged", extra={"segment": ack.segment,
                                                  "signal": ack.signal or "*",
                                                  "by": ack.by, "rearmed": rearmed})

    register_views(app, writer, counters, sql_enabled=settings.embedded_clickhouse,
                   traces_topic=settings.traces_topic, alerter=alerter)
    return app


def make_judge(settings: Settings) -> Judge | None:
    if not settings.judge_enabled:
        return None
    key = settings.judge_api_key.get_secret_value() if settings.judge_api_key else None
    prices = DEFAULT_PRICES
    if prices.rate(settings.judge_model) is None:
        # A self-hosted judge: its calls cost nothing here, so only the call rate binds.
        log.warning("judge model has no price: cost recorded as 0, only the calls-per-"
                    "minute budget applies", extra={"model": settings.judge_model})
        prices = PriceTable({**prices.prices, settings.judge_model: (0.0, 0.0)})
    return Judge(load_rubric(settings.judge_rubric), model=settings.judge_model,
                 base_url=settings.judge_base_url, api_key=key, prices=prices,
                 concurrency=settings.judge_concurrency,
                 budget=Budget(calls_per_minute=settings.judge_calls_per_minute,
                               dollars_per_day=settings.judge_dollars_per_day))


def run_worker(settings: Settings) -> None:
    """Prepare the store and topics (failing fast with a clear message), then consume."""
    import logging.config

    logging.config.dictConfig(logging_config(settings.log_level, settings.log_format))
    check_broker(settings)
    ensure_topics(settings)
    writer = ClickHouseWriter(
        connect(settings.clickhouse_url), batch_rows=settings.clickhouse_batch_rows,
        flush_interval=settings.clickhouse_flush_seconds,
        max_flush_interval=settings.clickhouse_max_flush_seconds,
        max_buffered_rows=settings.clickhouse_max_buffered_rows,
        purge_interval=(ENGINE_PURGE_SECONDS if settings.clickhouse_url.startswith("chdb:")
                        else None))
    applied = asyncio.run(writer.run(apply_migrations, writer.client,
                                     retention_days=settings.traces_ttl_days))
    log.info("clickhouse ready", extra={"url": redact(settings.clickhouse_url),
                                        "migrations_applied": applied})
    alerter = make_alerter(settings, writer)
    embedder = None
    if settings.embedding_drift:
        # Loaded before consuming: the packaged static model's first build takes minutes.
        embedder = make_embedder(settings.embedder, base_url=settings.judge_base_url,
                                 api_key=(settings.judge_api_key.get_secret_value()
                                          if settings.judge_api_key else None),
                                 cache_dir=settings.embedder_cache_dir)
        log.info("embedder ready", extra={"embedder": settings.embedder})
    app = build_app(settings, writer, alerter, embedder)
    # Every batch allocates tens of thousands of short-lived objects, so the collector's
    # default thresholds ran it ~150 times per 20k traces, each pass walking the long-
    # lived heap (models, tables, reference data): 12 % of ingest CPU, measured. Freeze
    # what start-up built and collect less often (2 %).
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True,
                          logging_config=logging_config(settings.log_level,
                                                        settings.log_format))
    try:
        worker.execute_from_commandline()
    finally:
        if alerter is not None:
            alerter.close()
        writer.close()


def make_alerter(settings: Settings, writer: ClickHouseWriter) -> SlackAlerter | None:
    if settings.slack_webhook_url is None:
        return None
    policy = AlertPolicy(
        cooldown=timedelta(minutes=settings.alert_cooldown_minutes),
        recover_after=timedelta(minutes=settings.alert_recover_minutes),
        digest_window=timedelta(seconds=settings.alert_digest_seconds),
        digest_threshold=settings.alert_digest_threshold,
        min_severity=settings.alert_min_severity)
    alerter = SlackAlerter(settings.slack_webhook_url.get_secret_value(), policy=policy,
                           store=ClickHouseAlertStore(writer.client, run=writer.run_sync))
    alerter.start()
    return alerter
