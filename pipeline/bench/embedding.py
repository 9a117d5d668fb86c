"""Embeddings for the detector benchmark: the shipped embedder, or a lexical fallback."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence

import numpy as np

from pipeline.bench.common import DATA


# --------------------------------------------------------------------------------------
# embeddings
# --------------------------------------------------------------------------------------
def _banking77_texts() -> list[str]:
    with (DATA / "train.csv").open(newline="", encoding="utf-8") as fh:
        return [row["text"] for row in csv.DictReader(fh)]


class LexicalEmbedder:
    """Fallback embedder: hashed word uni/bigrams, TF-IDF, TruncatedSVD to ``dim`` dims.

    Fitted on a fixed corpus (BANKING77's training texts plus any texts passed), not on
    the reference alone: an embedder fitted on the reference would place the reference
    differently from unseen texts of the same distribution, and every no-change
    stream would look drifted. Replace with ``pipeline.embedders`` when it exists.
    """

    def __init__(self, extra_corpus: Sequence[str] = (), dim: int = 384, seed: int = 0) -> None:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

        corpus = _banking77_texts() + list(extra_corpus)
        self._hash = HashingVectorizer(ngram_range=(1, 2), n_features=2**18,
                                       alternate_sign=False, norm=None)
        counts = self._hash.transform(corpus)
        self._tfidf = TfidfTransformer(sublinear_tf=True).fit(counts)
        self._svd = TruncatedSVD(n_components=dim, random_state=seed, n_iter=4)
        self._svd.fit(self._tfidf.transform(counts))

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = self._svd.transform(self._tfidf.transform(self._hash.transform(list(texts))))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def product_embedder() -> Callable[[Sequence[str]], np.ndarray] | None:
    """``pipeline.embedders.embed`` if the product provides it (not fitted here)."""
    try:
        from pipeline import embedders  # type: ignore[attr-defined]
    except ImportError:
        return None
    fn = getattr(embedders, "embed", None)
    if not callable(fn):
        return None
    return lambda texts: np.asarray(fn(list(texts)), dtype=np.float64)


def embedder_for(corpus: Sequence[str] = ()) -> Callable[[Sequence[str]], np.ndarray]:
    """The product embedder if ``pipeline.embedders`` provides one, else the lexical one."""
    return product_embedder() or LexicalEmbedder(corpus)


def embed(texts: Sequence[str], corpus: Sequence[str] = ()) -> np.ndarray:
    """Embed ``texts``; the one place to swap the embedder."""
    return embedder_for(corpus)(texts)


