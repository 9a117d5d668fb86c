"""The driftline worker, its scorers, CLI and demo."""
