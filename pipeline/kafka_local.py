"""`driftline kafka start|stop|status`: the local broker script under ``infra/kafka``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.config import Settings


def script() -> Path:
    """``infra/kafka/kafka-local.sh`` of the checkout this package runs from."""
    override = os.environ.get("DRIFTLINE_KAFKA_SCRIPT")
    path = Path(override) if override else (
        Path(__file__).resolve().parent.parent / "infra" / "kafka" / "kafka-local.sh")
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: the local broker runs from a driftline checkout "
            "(set DRIFTLINE_KAFKA_SCRIPT to its kafka-local.sh)")
    return path


def run(command: str, settings: Settings) -> int:
    port = urlsplit(f"//{settings.kafka_bootstrap.split(',')[0]}").port or 9092
    env = {**os.environ, "DRIFTLINE_KAFKA_PORT": str(port)}
    return subprocess.call(["bash", str(script()), command], env=env)
