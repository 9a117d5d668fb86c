import pytest

from pipeline.config import ConfigError, load_settings


def test_defaults_use_embedded_clickhouse_under_the_data_dir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = load_settings(data_dir=tmp_path)
    assert s.clickhouse_url == f"chdb://{tmp_path.resolve()}/clickhouse"
    assert s.embedded_clickhouse


def test_env_prefix_and_segment_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_SEGMENT_FIELDS", "app, route")
    monkeypatch.setenv("DRIFTLINE_CLICKHOUSE_URL", "http://u:p@ch:8123/driftline")
    s = load_settings()
    assert s.segment_fields == ("app", "route")
    assert not s.embedded_clickhouse


@pytest.mark.parametrize(("name", "value", "says"), [
    ("DRIFTLINE_BATCH_SIZE", "0", "greater than or equal to 1"),
    ("DRIFTLINE_SEGMENT_FIELDS", "app,colour", "colour"),
    ("DRIFTLINE_WEB_PORT", "http", "valid integer"),
    ("DRIFTLINE_LOG_LEVEL", "loud", "DEBUG"),
    ("DRIFTLINE_CLICKHOUSE_MAX_FLUSH_SECONDS", "0.1", "DRIFTLINE_CLICKHOUSE_FLUSH_SECONDS"),
])
def test_bad_setting_names_itself(monkeypatch: pytest.MonkeyPatch, name: str, value: str,
                                  says: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert name in message and says in message


def test_bad_clickhouse_url_is_named_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_CLICKHOUSE_URL", "mysql://u:hunter2@db/x")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "DRIFTLINE_CLICKHOUSE_URL" in str(info.value)
    assert "hunter2" not in str(info.value)
