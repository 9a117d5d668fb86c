"""Where driftline's results go: ClickHouse, the dead-letter topic, Slack."""
