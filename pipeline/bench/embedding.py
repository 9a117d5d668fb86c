"""Embeddings for the detector benchmarks: the product's embedders (``make_embedder``), the
same ones the worker uses, so the suite measures what driftline ships."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pipeline.config import Settings, load_settings

#: the product default (``DRIFTLINE_EMBEDDER``'s default), not whatever the environment
#: sets: a benchmark's default should not change with the shell it runs in
DEFAULT_EMBEDDER: str = Settings.model_fields["embedder"].default


def embedder_for(spec: str = DEFAULT_EMBEDDER) -> Callable[[Sequence[str]], np.ndarray]:
    """``texts -> (n, dim) float64`` with the embedder ``spec``, built as the worker builds
    it (``DRIFTLINE_EMBEDDER`` syntax; the static table's cache and an ``openai:`` server
    from the usual settings)."""
    from pipeline.scorers.embedders import make_embedder

    settings = load_settings(embedder=spec)  # a bad spec stops naming DRIFTLINE_EMBEDDER
    key = settings.judge_api_key.get_secret_value() if settings.judge_api_key else None
    embedder = make_embedder(settings.embedder, base_url=settings.judge_base_url, api_key=key,
                             cache_dir=settings.embedder_cache_dir)
    return lambda texts: np.asarray(embedder.embed(list(texts)), dtype=np.float64)


def cached_embeddings(texts: Sequence[str], spec: str = DEFAULT_EMBEDDER) -> np.ndarray:
    """Embeddings of ``texts`` by ``spec``, cached on disk per embedder spec and texts
    (``minilm`` takes ~6 min for BANKING77's 13,083 texts on the shared box)."""
    key = hashlib.blake2b(("\x1f".join(texts) + "\x1e" + spec).encode(),
                          digest_size=8).hexdigest()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "driftline"
    path = cache / f"bench-banking77-{spec.replace('/', '_').replace(':', '-')}-{key}.npy"
    if path.exists():
        return np.load(path)
    vectors = embedder_for(spec)(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors
