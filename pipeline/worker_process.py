"""Starts and stops `driftline worker` as a child process (for the demo and the tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pydantic import SecretStr

from pipeline.config import Settings
from pipeline.sql_client import worker_running


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process load exactly these settings."""
    env = dict(os.environ)
    # JSON mode: durations become ISO 8601 ("P1D"), which the child parses back; it masks
    # secrets, so those are taken from the settings themselves.
    for name, value in settings.model_dump(mode="json").items():
        key = f"DRIFTLINE_{name.upper()}"
        raw = getattr(settings, name)
        if raw is None:
            env.pop(key, None)
            continue
        if isinstance(raw, SecretStr):
            value = raw.get_secret_value()
        elif isinstance(value, list):
            value = ",".join(value)
        env[key] = str(value)
    return env


class WorkerProcess:
    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout: float = 120.0) -> None:
        if worker_running(self.settings, timeout=1.0):
            # Its /health would pass for this child's: the caller would measure, or test,
            # a stranger (a benchmark once did, left over from a failed run).
            raise RuntimeError(f"{self.settings.web_url} already answers /health: another "
                               "worker holds this web port; stop it or set DRIFTLINE_WEB_PORT")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "worker"],
            env=settings_env(self.settings), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + ready_timeout
        while not worker_running(self.settings, timeout=1.0):
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode} during start-up; "
                                   f"last lines of {self.log_path}:\n{self.tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"worker not ready after {ready_timeout:.0f}s; last lines "
                                   f"of {self.log_path}:\n{self.tail()}")
            time.sleep(0.2)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, as an orchestrator would; SIGKILL if it does not stop in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to commit or flush anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
