"""One way to reach ClickHouse, embedded (chdb) or a server, through clickhouse_connect."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

SCHEMES = ("chdb", "http", "https")


def redact(url: str) -> str:
    """The URL without its password, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def check_url(url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ValueError(
            f"unsupported scheme {scheme!r} in {redact(url)!r}: use chdb:///path/to/dir "
            "for the embedded engine or http(s)://user:password@host:8123/database"
        )
    if scheme == "chdb" and not urlsplit(url).path.strip("/"):
        raise ValueError("chdb URL needs a directory: chdb:///path/to/dir")
    return url


def connect(url: str) -> Client:
    """A client for ``chdb:///dir`` (in-process engine, this process owns ``dir``) or a server."""
    check_url(url)
    if url.startswith("chdb:"):
        Path(urlsplit(url).path).mkdir(parents=True, exist_ok=True)
    return clickhouse_connect.get_client(dsn=url)
