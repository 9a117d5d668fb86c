"""Heuristic scorers run on every trace: cheap, deterministic, one pass over the output.

Signals (name -> value, label):

- ``pii``: 1.0 when the output carries an e-mail, phone number, payment card (Luhn
  checked), IBAN (mod-97 checked) or national id (US SSN, UK NINO, Spanish DNI with its
  check letter); label lists the kinds found, e.g. ``"card,email"``.
- ``refusal``: 1.0 when the answer opens with a decline.
- ``empty``: 1.0 when the output is blank.
- ``truncated``: 1.0 when the output was cut off (``finish_reason=length``, output
  tokens at ``max_tokens``, an unclosed code fence or parenthesis, or it stops on ``,:;(``);
  label says which.
- ``format_valid``: only when the trace declares a format in its metadata:
  ``metadata["expected_format"] = "json"`` (output must parse as JSON, optionally inside a
  Markdown code fence) or ``"json_schema"`` with ``metadata["json_schema"]`` holding the
  schema as JSON text (output must validate against it; needs ``jsonschema``). A
  ``json_schema`` key alone implies ``json_schema``. Label: why it failed.
- ``length_ratio``: output characters per input character.
- ``latency_ms``: as reported; label ``"slow"`` above the configured SLO.
- ``cost_usd``: reported, or from a price table by model; label says where from.

>>> s = HeuristicScorer()
>>> rows = s.score("Where do I send it?", "Mail jo@example.com or call +44 20 7946 0958.")
>>> [(n, v, lab) for n, v, lab in rows if n in ("pii", "refusal", "truncated")]
[('pii', 1.0, 'email,phone'), ('refusal', 0.0, ''), ('truncated', 0.0, '')]
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson

from pipeline.scorers.rows import ScoreRow

if TYPE_CHECKING:
    from schemas.trace import Trace

SCORER = "heuristics"

# ---------------------------------------------------------------------------- refusal
# Openings that models use to decline; matched on the start of the answer only, where
# refusals sit, so a polite apology inside a helpful answer does not count.
REFUSAL_RE = re.compile(
    r"""^\W*(?:
        (?:i'?m|i\ am)\ (?:sorry|afraid|unable|not\ able|not\ allowed|not\ permitted)
      | sorry,?\ (?:but\ )?(?:i|we)\ (?:can(?:'?t|not)|won'?t|am\ unable|are\ unable)
      | i\ (?:can(?:'?t|not)|won'?t|will\ not|must\ decline|do\ not\ have\ access
             |don'?t\ have\ access|am\ not\ able|have\ to\ decline)
      | unfortunately,?\ (?:i|we)\ (?:can(?:'?t|not)|am\ unable|are\ unable|won'?t)
      | as\ an\ ai\b
      | i\ apologi[sz]e,?\ but
      | (?:that'?s|this\ is)\ not\ something\ i\ can
      | my\ apologies,?\ but\ i
    )""",
    re.IGNORECASE | re.VERBOSE,
)
REFUSAL_HEAD = 160


def refusal(output: str) -> float:
    """1.0 when the answer opens with a refusal, else 0.0.

    >>> refusal("I'm sorry, but I can't help with that request.")
    1.0
    >>> refusal("Your card should arrive within 5 working days. Sorry for the wait!")
    0.0
    """
    return 1.0 if REFUSAL_RE.match(output, 0, REFUSAL_HEAD) else 0.0


# -------------------------------------------------------------------------------- PII
# One alternation scanned once. Each branch is gated so that most positions fail on their
# first character: e-mails only at the start of a word followed by '@' somewhere in it,
# everything else only where a digit is within a couple of characters. Candidates are then
# checked (Luhn, mod-97, check letters, digit counts) because the regex alone over-fires.
_PII_RE = re.compile(
    r"""
    (?<![\w.%+-])(?=[\w.%+-]{1,64}@)
        (?P<email>[\w.%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,24})
  | (?=[A-Z(+]{0,2}\ ?\d)(?:
        (?P<iban>\b[A-Z]{2}\d{2}(?:\ ?[A-Z0-9]{4}){2,7}(?:\ ?[A-Z0-9]{1,3})?\b)
      | (?P<nino>\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\ ?\d{2}\ ?\d{2}\ ?\d{2}\ ?[A-D]\b)
      | (?P<ssn>(?<![\d-])(?!000|666|9)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-]))
      | (?P<dni>(?<![\w-])\d{8}-?[A-HJ-NP-TV-Z]\b)
      | (?P<card>(?<![\d-])\d(?:[\ -]?\d){12,18}(?![\d-]))
      | (?P<phone>(?<![\w+])(?:\+\d{1,3}[\ .-]?)?(?:\(\d{1,4}\)[\ .-]?)?
                  \d{2,4}(?:[\ .-]?\d{2,4}){2,4}(?![\w]))
    )
    """,
    re.VERBOSE,
)
#: Every branch above matches an '@' or two digits at most one space or dash apart (an
#: IBAN's check digits, a card's, a phone's groups...): text without either cannot hold
#: PII, and most answers ("within 2 working days") have neither.
_DIGIT_PAIR = re.compile(r"\d[\ -]?\d")
_ASCII_DIGIT_PAIR = re.compile(r"[0-9][\ -]?[0-9]")  # the same on ASCII text, and faster
_ASCII_DIGITS = b"0123456789"
_NON_DIGIT = re.compile(r"\D")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a digit string (payment cards).

    >>> luhn_ok("4111111111111111"), luhn_ok("4111111111111112")
    (True, False)
    """
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i & 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    """ISO 13616 mod-97 check of an IBAN (spaces allowed).

    >>> iban_ok("GB82 WEST 1234 5698 7654 32"), iban_ok("GB82 WEST 1234 5698 7654 33")
    (True, False)
    """
    s = iban.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    # Letters count as 10..35; int() on the joined digits is exact and fast enough.
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _dni_ok(text: str) -> bool:
    digits = text[:8]
    return _DNI_LETTERS[int(digits) % 23] == text[-1]


def _phone_ok(text: str) -> bool:
    n = len(_NON_DIGIT.sub("", text))
    if not 10 <= n <= 15:
        return False
    # Bare runs of digits are order numbers and amounts far more often than phones.
    if text[0] not in "+(" and not any(c in text for c in " .-"):
        return False
    return not _IPV4.fullmatch(text)


def pii_kinds(text: str) -> list[str]:
    """Kinds of PII found in ``text``, sorted, each once.

    >>> pii_kinds("card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00")
    ['card', 'iban']
    >>> pii_kinds("order 4111 1111 1111 1112 ships on 2026-11-22")
    []
    """
    # Every kind starts at most 64 characters before the gate's first hit (an e-mail's
    # local part), and the one-pass regex costs tens of microseconds where it scans.
    gate = _gate(text)
    if gate < 0:
        return []
    return _scan(text, max(0, gate - 64))


def _gate(text: str) -> int:
    """Where the first '@' or pair of digits (see ``_DIGIT_PAIR``) is, or -1.

    >>> _gate("call 0800 123"), _gate("mail me@x.org or 12"), _gate("in 2 days"), _gate("١٢")
    (5, 7, -1, 0)
    """
    at = text.find("@")
    if text.isascii():
        # Most answers hold no digit at all: bytes.translate finds that in C, four times
        # faster than a regex scan of the text (measured: 1.1 against 4.5 us a trace).
        raw = text.encode("ascii")
        if len(raw.translate(None, _ASCII_DIGITS)) == len(raw):
            return at
        pair = _ASCII_DIGIT_PAIR.search(text)
    else:
        pair = _DIGIT_PAIR.search(text)
    if pair is None:
        return at
    return pair.start() if at < 0 else min(at, pair.start())


def _scan(text: str, start: int) -> list[str]:
    found: set[str] = set()
    for m in _PII_RE.finditer(text, start):
        kind = m.lastgroup
        value = m.group(kind)  # type: ignore[arg-type]
        if kind == "card":
            digits = _NON_DIGIT.sub("", value)
            if 13 <= len(digits) <= 19 and luhn_ok(digits):
                found.add("card")
            elif _phone_ok(value):
                found.add("phone")
        elif kind == "iban":
            if iban_ok(value):
                found.add("iban")
        elif kind == "dni":
            if _dni_ok(value.replace("-", "")):
                found.add("national_id")
        elif kind in ("ssn", "nino"):
            found.add("national_id")
        elif kind == "phone":
            if _phone_ok(value):
                found.add("phone")
        else:
            found.add(kind)  # type: ignore[arg-type]
    return sorted(found)


# ------------------------------------------------------------------- empty / truncated
_DANGLING = frozenset(",;:-([{\u2013")


def truncation(output: str, metadata: Mapping[str, str], output_tokens: int | None) -> str:
    """Why the output looks cut off, or ``""``.

    >>> truncation("Open the app, then tap Cards.", {}, None)
    ''
    >>> truncation("Here are the steps:", {}, None)
    'dangling'
    >>> truncation("ok", {"finish_reason": "length"}, None)
    'finish_reason'
    """
    if metadata.get("finish_reason") == "length":
        return "finish_reason"
    max_tokens = metadata.get("max_tokens")
    if output_tokens is not None and max_tokens and max_tokens.isdigit() \
            and output_tokens >= int(max_tokens):
        return "max_tokens"
    if output.count("```") & 1:
        return "open_code_fence"
    if output.count("(") > output.count(")"):
        return "open_paren"
    tail = output.rstrip()
    if tail and tail[-1] in _DANGLING:
        return "dangling"
    return ""


# ---------------------------------------------------------------------------- format
_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


@lru_cache(maxsize=256)
def _validator(schema_text: str) -> Any:
    import jsonschema  # optional: only traces that declare a schema need it

    schema = orjson.loads(schema_text)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def format_check(output: str, metadata: Mapping[str, str]) -> tuple[float, str] | None:
    """(1.0, "") when the output has the declared format, (0.0, why) when not; None when
    the trace declares no format.

    >>> format_check('```json\\n{"a": 1}\\n```', {"expected_format": "json"})
    (1.0, '')
    >>> format_check('{"a": 1', {"expected_format": "json"})
    (0.0, 'invalid_json')
    >>> schema = '{"type": "object", "required": ["a"]}'
    >>> format_check('{"b": 1}', {"json_schema": schema})
    (0.0, 'schema: required')
    >>> format_check("hi", {}) is None
    True
    """
    expected = metadata.get("expected_format")
    schema_text = metadata.get("json_schema")
    if expected is None and schema_text is None:
        return None
    expected = (expected or "json_schema").lower()
    if expected not in ("json", "json_schema"):
        return (0.0, f"unsupported_format:{expected[:32]}")
    fenced = _FENCE.match(output)
    body = fenced.group(1) if fenced else output
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return (0.0, "invalid_json")
    if expected == "json" or schema_text is None:
        return (1.0, "")
    try:
        validator = _validator(schema_text)
    except Exception:  # a producer's bad schema is their bug, not an invalid answer
        return (0.0, "bad_schema")
    error = next(iter(validator.iter_errors(value)), None)
    return (1.0, "") if error is None else (0.0, f"schema: {error.validator}")


# ------------------------------------------------------------------------------ cost
@dataclass(frozen=True)
class PriceTable:
    """USD per million tokens by model, input and output; a model matches its longest
    listed prefix, so dated snapshots (``gpt-4o-mini-2024-07-18``) need no entry.

    >>> p = PriceTable({"gpt-4o-mini": (0.15, 0.60)})
    >>> p.cost("gpt-4o-mini-2024-07-18", 1000, 500)
    0.00045
    >>> p.cost("unknown", 1000, 500) is None
    True
    """

    prices: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_resolved", {})

    @classmethod
    def from_json(cls, text: str) -> PriceTable:
        """``{"model": [input_per_mtok, output_per_mtok], ...}``, e.g. from
        ``DRIFTLINE_PRICES``."""
        raw = orjson.loads(text)
        return cls({k: (float(v[0]), float(v[1])) for k, v in raw.items()})

    def rate(self, model: str) -> tuple[float, float] | None:
        resolved: dict[str, tuple[float, float] | None] = self._resolved  # type: ignore[attr-defined]
        if model not in resolved:
            best = max((k for k in self.prices if model.startswith(k)), key=len, default=None)
            resolved[model] = self.prices[best] if best is not None else None
        return resolved[model]

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float | None:
        rate = self.rate(model)
        if rate is None:
            return None
        return _cost(rate, input_tokens, output_tokens)


@lru_cache(maxsize=1 << 16)
def _cost(rate: tuple[float, float], input_tokens: int, output_tokens: int) -> float:
    # Cached: token counts repeat (a route's prompts are alike), and round() to 12 digits
    # cost 0.5-1.5 us a trace, 3 % of the worker's main thread (py-spy, e2e benchmark).
    return round((input_tokens * rate[0] + output_tokens * rate[1]) / 1e6, 12)


#: Public list prices (USD per million tokens) at the time of writing; override with
#: ``DRIFTLINE_PRICES``. Self-hosted models cost 0 here: their cost is the hardware.
DEFAULT_PRICES = PriceTable({
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "claude-haiku": (0.80, 4.00),
    "claude-sonnet": (3.00, 15.00),
    "llama-3.1-8b": (0.0, 0.0),
})


# ---------------------------------------------------------------------------- scorer
@dataclass
class HeuristicScorer:
    """All heuristics of one trace; ``score`` returns ``(name, value, label)`` triples."""

    prices: PriceTable = field(default_factory=lambda: DEFAULT_PRICES)
    latency_slo_ms: float = 10_000.0
    #: characters per token when a trace reports no token counts (a rough English mean)
    chars_per_token: float = 4.0

    def score(
        self,
        input_text: str,
        output: str,
        *,
        model: str | None = None,
        latency_ms: float | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cost_usd: float | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[tuple[str, float, str]]:
        meta = metadata or {}
        kinds = pii_kinds(output)
        empty = not output.strip()
        cut = "" if empty else truncation(output, meta, output_tokens)
        out: list[tuple[str, float, str]] = [  # the first four always, in this order
            ("pii", 1.0 if kinds else 0.0, ",".join(kinds)),
            ("refusal", refusal(output), ""),  # REFUSAL_AT
            ("empty", 1.0 if empty else 0.0, ""),
            ("truncated", 1.0 if cut else 0.0, cut),
        ]
        if meta:
            fmt = format_check(output, meta)
            if fmt is not None:
                out.append(("format_valid", fmt[0], fmt[1]))
        out.append(("length_ratio", len(output) / max(len(input_text), 1), ""))
        if latency_ms is not None:
            out.append(("latency_ms", latency_ms,
                        "slow" if latency_ms > self.latency_slo_ms else ""))
        out.append(self._cost(input_text, output, model, input_tokens, output_tokens,
                              cost_usd))
        return out

    def _cost(self, input_text: str, output: str, model: str | None,
              input_tokens: int | None, output_tokens: int | None,
              cost_usd: float | None) -> tuple[str, float, str]:
        if cost_usd is not None:
            return ("cost_usd", cost_usd, "reported")
        label = "price_table"
        if input_tokens is None or output_tokens is None:
            label = "estimated"
            input_tokens = int(len(input_text) / self.chars_per_token)
            output_tokens = int(len(output) / self.chars_per_token)
        cost = self.prices.cost(model or "", input_tokens, output_tokens)
        return ("cost_usd", 0.0, "unknown_model") if cost is None else ("cost_usd", cost, label)

    def score_trace(self, trace: Trace) -> list[tuple[str, float, str]]:
        return self.score(
            trace.input_text, trace.output_text, model=trace.model,
            latency_ms=trace.latency_ms, input_tokens=trace.input_tokens,
            output_tokens=trace.output_tokens, cost_usd=trace.cost_usd,
            metadata=trace.metadata,
        )

    def rows(self, trace: Trace, sample_rate: float = 1.0) -> list[ScoreRow]:
        """Score rows for ClickHouse (heuristics run on every trace: rate 1)."""
        return [ScoreRow(trace.trace_id, SCORER, n, v, lab, sample_rate=sample_rate)
                for n, v, lab in self.score_trace(trace)]


#: Where ``score`` puts the refusal score: ingest reads it for every trace.
REFUSAL_AT = 1

#: Heuristic signals that mark a trace as risky (the sampler always judges those).
FLAG_NAMES = frozenset({"pii", "refusal", "empty", "truncated"})


def flagged(scores: list[tuple[str, float, str]]) -> bool:
    """True when any guardrail flag fired, or a declared format was not met.

    >>> flagged([("pii", 0.0, ""), ("format_valid", 0.0, "invalid_json")])
    True
    """
    for name, value, _ in scores:
        if (name in FLAG_NAMES and value) or (name == "format_valid" and not value):
            return True
    return False
