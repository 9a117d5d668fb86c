"""docker-compose.yml and the Dockerfile stay buildable and scalable.

Offline: no Docker engine, no Kafka, no network. When the docker CLI has the
compose plugin, `docker compose config` validates the file as well; without it
the structural checks below are the whole test, not a skip.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CLICKHOUSE_CONFIG = ROOT / "infra" / "clickhouse" / "config.d" / "driftline.xml"
SECRETS = ("OPENAI_API_KEY", "DRIFTLINE_SLACK_WEBHOOK_URL")


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _env(service: dict[str, Any]) -> dict[str, str | None]:
    # Compose accepts both the mapping form and the list form ["K=V", "K"].
    env = service.get("environment") or {}
    if isinstance(env, list):
        return {k: (v if sep else None) for k, sep, v in (e.partition("=") for e in env)}
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuations joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        word, _, args = pending.partition(" ")
        out.append((word.upper(), args.strip()))
        pending = ""
    return out


def _copy_sources(args: str) -> list[str] | None:
    """Host paths a COPY/ADD reads, or None when it copies from another stage or image."""
    parts = json.loads(args) if args.startswith("[") else shlex.split(args)
    flags = [p for p in parts if p.startswith("--")]
    if any(f.startswith("--from=") for f in flags):
        return None
    paths = [p for p in parts if not p.startswith("--")]
    assert len(paths) >= 2, f"COPY needs a source and a destination: {args!r}"
    return paths[:-1]


def _dockerignore_patterns() -> list[str]:
    if not DOCKERIGNORE.exists():
        return []
    lines = (ln.strip() for ln in DOCKERIGNORE.read_text().splitlines())
    return [ln for ln in lines if ln and not ln.startswith("#")]


def test_services_exist() -> None:
    services = _compose()["services"]
    for name in ("kafka", "clickhouse", "worker"):
        assert name in services, f"docker-compose.yml lacks the {name!r} service"


def test_worker_scales() -> None:
    worker = _compose()["services"]["worker"]
    # Either key pins one container or one host port, and `--scale worker=3` fails.
    assert "container_name" not in worker
    assert "ports" not in worker, "publish nothing from the worker; use expose"
    assert "build" in worker, "the worker image is built from this repository"


def test_worker_environment() -> None:
    env = _env(_compose()["services"]["worker"])
    url = env.get("DRIFTLINE_CLICKHOUSE_URL")
    assert url and url.startswith("http"), f"worker must use the ClickHouse server, got {url!r}"
    assert env.get("DRIFTLINE_KAFKA_BOOTSTRAP"), "worker needs DRIFTLINE_KAFKA_BOOTSTRAP"
    for name in SECRETS:
        # Present so the value passes through from the shell; never written in the file.
        assert name in env, f"{name} is not passed through to the worker"
        value = env[name]
        assert value is None or value.startswith("${"), f"{name} has a literal value"


def test_golden_job_is_opt_in() -> None:
    golden = _compose()["services"].get("golden")
    if golden is None:
        return
    # It calls a model endpoint every night: a plain `up` must not start it unasked.
    assert golden.get("profiles"), "the golden service must sit behind a compose profile"
    assert golden["command"].split()[:2] == ["golden", "schedule"]


def test_dockerfile_copy_sources_exist() -> None:
    instructions = _instructions(DOCKERFILE)
    ignored = _dockerignore_patterns()
    sources: list[str] = []
    for word, args in instructions:
        if word in ("COPY", "ADD"):
            sources += _copy_sources(args) or []
    assert sources, "the Dockerfile copies nothing from the repository"
    for src in sources:
        rel = src.rstrip("/") or "."
        matches = list(ROOT.glob(rel)) if any(c in rel for c in "*?[") else [ROOT / rel]
        assert matches and all(m.exists() for m in matches), (
            f"Dockerfile copies {src!r}, which does not exist in {ROOT}"
        )
        for pattern in ignored:
            assert not fnmatch.fnmatch(rel, pattern.strip("/")), (
                f"Dockerfile copies {src!r} but .dockerignore excludes it ({pattern!r})"
            )


def test_dockerfile_runs_driftline_as_non_root() -> None:
    instructions = _instructions(DOCKERFILE)
    users = [args for word, args in instructions if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image runs as root"
    entrypoints = [args for word, args in instructions if word == "ENTRYPOINT"]
    assert entrypoints and json.loads(entrypoints[-1]) == ["driftline"]


def test_clickhouse_config_is_mounted_and_valid() -> None:
    volumes = _compose()["services"]["clickhouse"].get("volumes") or []
    host_paths = []
    for vol in volumes:
        if isinstance(vol, dict):
            if vol.get("type") == "bind":
                host_paths.append(vol["source"])
        elif vol.startswith((".", "/")):
            host_paths.append(vol.split(":", 1)[0])
    mounted = [(ROOT / p).resolve() for p in host_paths]
    assert CLICKHOUSE_CONFIG.resolve() in mounted, (
        f"{CLICKHOUSE_CONFIG.relative_to(ROOT)} is not mounted into the clickhouse service"
    )
    for path in mounted:
        assert path.exists(), f"clickhouse mounts {path}, which does not exist"
    root = ET.parse(CLICKHOUSE_CONFIG).getroot()
    assert root.tag == "clickhouse"


def _check_structure(data: dict[str, Any]) -> None:
    """What `docker compose config` would reject, for machines without the plugin."""
    services = data["services"]
    declared_volumes = set((data.get("volumes") or {}).keys())
    for name, svc in services.items():
        assert svc.get("image") or svc.get("build"), f"{name}: needs image or build"
        deps = svc.get("depends_on") or {}
        for dep in deps:
            assert dep in services, f"{name} depends on unknown service {dep!r}"
        if isinstance(deps, dict):
            for dep, spec in deps.items():
                if (spec or {}).get("condition") == "service_healthy":
                    assert "healthcheck" in services[dep], (
                        f"{name} waits for {dep} to be healthy, but {dep} has no healthcheck"
                    )
        for vol in svc.get("volumes") or []:
            if isinstance(vol, str):
                source = vol.split(":", 1)[0]
                if ":" in vol and not source.startswith((".", "/", "~", "$")):
                    assert source in declared_volumes, f"{name}: volume {source!r} not declared"


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    try:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True,
                               timeout=30, env=_offline_env())
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [docker, "compose"] if probe.returncode == 0 else None


def _offline_env() -> dict[str, str]:
    # `compose config` only reads files; dropping proxies makes sure nothing is fetched.
    drop = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["DOCKER_CLI_HINTS"] = "false"
    return env


def test_compose_config() -> None:
    _check_structure(_compose())
    cli = _compose_cli()
    if cli is None:
        return  # no compose plugin here: the structural checks above are the test
    for extra in ([], ["--profile", "golden"]):
        result = subprocess.run(
            [*cli, "-f", str(COMPOSE), *extra, "config", "-q"],
            cwd=ROOT, capture_output=True, text=True, timeout=60, env=_offline_env(),
        )
        assert result.returncode == 0, (
            f"docker compose {' '.join([*extra, 'config'])} failed:\n{result.stderr}"
        )
