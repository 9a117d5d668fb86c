"""Settings, from ``DRIFTLINE_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from schemas.limits import Limits
from sinks.clickhouse_client import check_url

# Values of these settings may hold credentials: never echo them back.
_SECRET = re.compile(r"URL|KEY|PASSWORD|TOKEN|SECRET")

SEGMENT_FIELDS = (
    "app", "route", "model", "model_version", "prompt_version", "tenant",
)


class ConfigError(SystemExit):
    """A setting is wrong; the message names it and says why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_", env_file=".env", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    traces_topic: str = "driftline.traces"
    dlq_topic: str = "driftline.traces.dlq"
    topic_partitions: int = Field(default=4, ge=1, le=1024)
    app_id: str = Field(default="driftline", description="Faust app id = Kafka consumer group")
    # How long a crashed worker holds its partitions before the group moves them.
    kafka_session_timeout: float = Field(default=10.0, ge=6, le=300)
    data_dir: Path = Path.home() / ".local" / "share" / "driftline"
    clickhouse_url: str = ""
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    batch_size: int = Field(default=2000, ge=1, le=1_000_000)
    batch_seconds: float = Field(default=0.5, gt=0, le=60)
    #: fetched traces waiting for the ingest loop; beyond it the partitions pause. Two
    #: seconds of work at 20,000 traces/s: a refill arrives 0.3-1.2 s after its
    #: partitions resume (see pipeline/bulk_consumer.py), and with 20,000 the loop ran
    #: dry about once per refill (measured)
    ingest_buffer: int = Field(default=40_000, ge=100)
    #: sampled traces fetched and waiting for the scoring stage (judge, embedder)
    scoring_buffer: int = Field(default=2000, ge=100)
    segment_fields: Annotated[tuple[str, ...], NoDecode] = ("app", "model")
    max_message_bytes: int = Field(default=1_000_000, ge=1024)
    #: auto detects per message; or one of plain, span, otel_genai, openinference,
    #: otlp_json, otlp_proto for a topic that carries one format only
    traces_format: Literal["auto", "plain", "span", "otel_genai", "openinference",
                           "otlp_json", "otlp_proto"] = "auto"
    max_text_chars: int = Field(default=32_000, ge=100)
    max_label_chars: int = Field(default=256, ge=8)
    #: timestamps further ahead are dead-lettered (timestamp_out_of_range); 0 disables
    max_future_skew: timedelta = timedelta(days=1)
    #: older timestamps are dead-lettered (timestamp_out_of_range); 0 disables
    max_age: timedelta = timedelta(days=30)
    adwin_delta: float = Field(default=0.002, gt=0, lt=1)
    #: trace ids a worker remembers to count (and keep out of detectors) duplicates:
    #: between this many and twice as many of the latest ids; ~100 bytes each
    dedup_window: int = Field(default=200_000, ge=1000)
    #: guardrail flag rate (any of pii, refusal, empty, truncated, format invalid): a
    #: Bernoulli CUSUM per segment, calibrated to this many traces between false alarms,
    #: against the rate of its first ``flag_warmup`` traces, never taken below
    #: ``flag_min_rate`` (a warm-up that saw no flag must not make the first one an alarm)
    flag_ert: float = Field(default=100_000, gt=1)
    flag_warmup: int = Field(default=2000, ge=100)
    flag_min_rate: float = Field(default=0.005, gt=0, lt=0.5)
    #: input drift: the worker embeds the base-rate sample's inputs (DRIFTLINE_EMBEDDER)
    #: for a per-segment embedding detector, whose reference is its first
    #: ``embedding_warmup`` sampled inputs
    embedding_drift: bool = False
    embedding_ert: float = Field(default=20_000, gt=1)
    embedding_warmup: int = Field(default=1000, ge=200)
    #: keep raw traces and scores this many days (0: forever; unset: leave the tables as
    #: they are); applied at start-up
    traces_ttl_days: int | None = Field(default=None, ge=0)
    clickhouse_batch_rows: int = Field(default=20_000, ge=1)
    clickhouse_flush_seconds: float = Field(default=0.5, gt=0)
    #: while rows arrive fast enough to fill a block by then, the writer waits for the
    #: block up to this age instead of flushing at clickhouse_flush_seconds
    clickhouse_max_flush_seconds: float = Field(default=2.0, gt=0)
    clickhouse_max_buffered_rows: int = Field(default=200_000, ge=1000)
    slack_webhook_url: SecretStr | None = None
    alert_cooldown_minutes: float = Field(default=30, ge=0)
    alert_recover_minutes: float = Field(default=30, gt=0)
    alert_digest_seconds: float = Field(default=10, ge=0)
    alert_digest_threshold: int = Field(default=5, ge=2)
    alert_min_severity: Literal["info", "warning", "critical"] = "warning"
    #: the model under test (golden runs): any OpenAI-compatible endpoint
    model_base_url: str | None = None
    model_name: str = "gpt-4o-mini"
    model_api_key: SecretStr | None = None
    system_prompt: str | None = None
    #: the LLM judge (one rubric for live and golden scores)
    judge_base_url: str | None = None
    judge_model: str = "gpt-4o-mini"
    judge_api_key: SecretStr | None = None
    judge_rubric: str = "helpfulness"
    judge_concurrency: int = Field(default=8, ge=1, le=512)
    judge_calls_per_minute: int = Field(default=600, ge=1)
    judge_dollars_per_day: float = Field(default=5.0, gt=0)
    #: fraction of traces the judge scores (risky traces always are); per segment in
    #: DRIFTLINE_SAMPLE_RATES as JSON {"app|model": rate}
    sample_rate: float = Field(default=0.05, ge=0, le=1)
    sample_rates: dict[str, float] = Field(default_factory=dict)
    sample_salt: str = ""
    #: sampled traces travel from ingest to the judge through this topic (keyed by
    #: segment), so a slow judge never holds back ingestion and nothing is lost
    scoring_topic: str = "driftline.scoring"
    #: operator commands (``driftline drift ack``), keyed by segment like the traces
    control_topic: str = "driftline.control"
    #: texts to vectors, wherever driftline needs them (input drift in the worker, input
    #: coverage of the golden set): static | minilm | hashing | openai:<model> (at
    #: DRIFTLINE_JUDGE_BASE_URL) | sentence-transformers:<name>; the static table is
    #: built once and cached
    embedder: str = "static"
    embedder_cache_dir: Path | None = None
    #: golden versus live: the live window compared with the last accepted golden run
    golden_window: timedelta = timedelta(hours=24)
    #: live traces per segment read for input coverage and the report (a hash sample)
    golden_live_sample: int = Field(default=5000, ge=100)
    #: HTML reports of golden runs and comparisons
    reports_dir: Path | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "console"

    @field_validator("segment_fields", mode="before")
    @classmethod
    def _split_fields(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(f.strip() for f in value.split(",") if f.strip())
        return value

    @field_validator("segment_fields")
    @classmethod
    def _known_fields(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [f for f in value if f not in SEGMENT_FIELDS]
        if unknown or not value:
            raise ValueError(f"segment fields must be among {', '.join(SEGMENT_FIELDS)}; "
                             f"got {', '.join(unknown) or 'none'}")
        return value

    @field_validator("embedder")
    @classmethod
    def _known_embedder(cls, value: str) -> str:
        from pipeline.scorers.embedders import EMBEDDER_KINDS

        kind, _, arg = value.partition(":")
        if kind not in EMBEDDER_KINDS or (kind in ("openai", "sentence-transformers")
                                          and not arg):
            raise ValueError("must be static, minilm, hashing, openai:<model> or "
                             "sentence-transformers:<name>")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("clickhouse_max_flush_seconds")
    @classmethod
    def _not_below_flush(cls, value: float, info: ValidationInfo) -> float:
        floor = info.data.get("clickhouse_flush_seconds")
        if floor is not None and value < floor:
            raise ValueError(f"must be at least DRIFTLINE_CLICKHOUSE_FLUSH_SECONDS ({floor})")
        return value

    @field_validator("clickhouse_url")
    @classmethod
    def _clickhouse_scheme(cls, value: str) -> str:
        return check_url(value) if value else value

    @model_validator(mode="after")
    def _default_clickhouse(self) -> Settings:
        if not self.clickhouse_url:
            self.clickhouse_url = f"chdb://{(self.data_dir / 'clickhouse').resolve()}"
        if self.reports_dir is None:
            self.reports_dir = self.data_dir / "reports"
        if self.embedder_cache_dir is None:
            self.embedder_cache_dir = self.data_dir / "embedders"
        return self

    def limits(self) -> Limits:
        return Limits(
            max_message_bytes=self.max_message_bytes, max_text_chars=self.max_text_chars,
            max_label_chars=self.max_label_chars,
            max_future_skew=self.max_future_skew or None, max_age=self.max_age or None)

    @property
    def judge_enabled(self) -> bool:
        return self.judge_base_url is not None or self.judge_api_key is not None

    @property
    def scoring_enabled(self) -> bool:
        """Whether ingest samples traces for the scoring stage (judge and/or embedder)."""
        return self.judge_enabled or self.embedding_drift

    @property
    def embedded_clickhouse(self) -> bool:
        return self.clickhouse_url.startswith("chdb:")

    @property
    def web_url(self) -> str:
        host = "127.0.0.1" if self.web_host in ("0.0.0.0", "::") else self.web_host
        return f"http://{host}:{self.web_port}"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, or a :class:`ConfigError` naming the bad setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            name = "DRIFTLINE_" + "_".join(str(p) for p in err["loc"]).upper()
            shown = "" if _SECRET.search(name) else f" (got {err.get('input')!r})"
            lines.append(f"  {name}: {err['msg']}{shown}")
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None
