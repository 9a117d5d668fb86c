"""Heuristic scorers on labelled examples: precision and recall are asserted, not assumed."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.scorers.heuristics import (
    REFUSAL_AT,
    HeuristicScorer,
    PriceTable,
    _gate,
    _scan,
    flagged,
    format_check,
    iban_ok,
    luhn_ok,
    pii_kinds,
    refusal,
    truncation,
)

# (text, set of PII kinds a reviewer marked in it)
PII_LABELLED: list[tuple[str, set[str]]] = [
    ("You can reach our team at support@bank.example.com any time.", {"email"}),
    ("Contact jane.doe+billing@mail.co.uk for the invoice.", {"email"}),
    ("Your registered address is J.Smith_1990@example.org.", {"email"}),
    ("Call us on +44 20 7946 0958 between 9 and 5.", {"phone"}),
    ("The customer's number is (415) 555-2671.", {"phone"}),
    ("Phone: 415-555-2671", {"phone"}),
    ("Reach me at +1 415.555.2671 tomorrow", {"phone"}),
    ("Your card 4111 1111 1111 1111 was charged.", {"card"}),
    ("Card number: 5500-0000-0000-0004", {"card"}),
    ("Amex 378282246310005 expires 04/27", {"card"}),
    ("Send it to GB82 WEST 1234 5698 7654 32 please.", {"iban"}),
    ("IBAN: DE89370400440532013000", {"iban"}),
    ("Use FR14 2004 1010 0505 0001 3M02 606 for the transfer.", {"iban"}),
    ("Her SSN is 123-45-6789.", {"national_id"}),
    ("National Insurance number AB 12 34 56 C is on file.", {"national_id"}),
    ("DNI 12345678Z", {"national_id"}),
    ("Pay with 4012888888881881 and email bob@corp.io", {"card", "email"}),
    ("Write to ops@driftline.dev or call +49 30 1234 5678.", {"email", "phone"}),
    # negatives: numbers that are not PII, and look-alikes that fail their checksum
    ("Your card should arrive within 5 working days.", set()),
    ("Order 4111 1111 1111 1112 has shipped.", set()),
    ("The transfer of 1,250.00 EUR was completed on 2026-11-22.", set()),
    ("Reference number 20261122 was created.", set()),
    ("Tracking id 123456789012 is in transit.", set()),
    ("IBAN GB82 WEST 1234 5698 7654 33 is invalid.", set()),
    ("The server at 192.168.100.200 is down.", set()),
    ("Send the file as an attachment @ the portal.", set()),
    ("Your PIN was reset at 10:45 today.", set()),
    ("Version 3.14.159 of the app fixes this.", set()),
    ("Exchange rates update every 30 seconds for 150 currencies.", set()),
    ("Invalid SSN-like 000-12-3456 is not real.", set()),
    ("DNI 12345678A has a wrong check letter.", set()),
    ("Top up between 10 and 10000 GBP.", set()),
]


def _precision_recall(kind: str) -> tuple[float, float, int]:
    tp = fp = fn = 0
    for text, truth in PII_LABELLED:
        got = kind in pii_kinds(text)
        want = kind in truth
        tp += got and want
        fp += got and not want
        fn += want and not got
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall, tp + fn


@pytest.mark.parametrize("kind", ["email", "phone", "card", "iban", "national_id"])
def test_pii_precision_and_recall_per_kind(kind: str) -> None:
    precision, recall, positives = _precision_recall(kind)
    assert positives >= 2
    assert precision == 1.0, f"{kind}: precision {precision:.2f}"
    assert recall == 1.0, f"{kind}: recall {recall:.2f}"


def test_pii_overall_flag() -> None:
    tp = sum(bool(pii_kinds(t)) and bool(k) for t, k in PII_LABELLED)
    fp = sum(bool(pii_kinds(t)) and not k for t, k in PII_LABELLED)
    fn = sum(not pii_kinds(t) and bool(k) for t, k in PII_LABELLED)
    assert tp / (tp + fp) >= 0.95 and tp / (tp + fn) >= 0.95


REFUSALS = [
    "I'm sorry, but I can't help with that request.",
    "I am not able to share account details.",
    "Sorry, we can't process that here.",
    "Unfortunately, we are unable to reverse this payment.",
    "That's not something I can help with.",
    "My apologies, but I cannot do that.",
    "I don't have access to your transactions.",
    "I'm not allowed to discuss other customers.",
    "As an AI, I cannot make transfers.",
    "I have to decline this request.",
]
ANSWERS = [
    "Sure. I'm sorry to hear the payment failed; please retry in the app.",
    "I can help with that: top-ups take one working day.",
    "Your card should arrive within 5 working days. Sorry for the wait!",
    "Unfortunately the rate changed; here is the new one: 1.17.",
    "I am happy to help. Open Cards > Freeze.",
    "Sorry for the delay! Your refund was issued today.",
    "Yes, we support 30 currencies.",
    "I cancelled the transfer for you.",
]


def test_refusal_precision_and_recall() -> None:
    tp = sum(refusal(t) == 1.0 for t in REFUSALS)
    fp = sum(refusal(t) == 1.0 for t in ANSWERS)
    assert tp / len(REFUSALS) == 1.0
    assert fp == 0


TRUNCATED = [
    ("Here are the steps:", {}, None),
    ("To freeze your card, open the app, go to Cards,", {}, None),
    ("```python\nprint('hi')\n", {}, None),
    ("The fees are as follows (see table", {}, None),
    ("Everything looks fine", {"finish_reason": "length"}, None),
    ("A long answer that hit the cap", {"max_tokens": "256"}, 256),
]
COMPLETE = [
    ("Your card will arrive in 3 days.", {}, None),
    ("Done!", {}, None),
    ("```python\nprint('hi')\n```", {}, None),
    ("Steps:\n- open the app\n- tap Cards", {}, None),
    ("Fine", {"finish_reason": "stop", "max_tokens": "256"}, 12),
]


def test_truncation_precision_and_recall() -> None:
    assert all(truncation(*case) for case in TRUNCATED)
    assert not any(truncation(*case) for case in COMPLETE)


def test_format_checks() -> None:
    schema = '{"type":"object","properties":{"score":{"type":"integer"}},"required":["score"]}'
    assert format_check('{"score": 3}', {"json_schema": schema}) == (1.0, "")
    assert format_check('{"score": "3"}', {"json_schema": schema}) == (0.0, "schema: type")
    assert format_check("[1, 2]", {"expected_format": "JSON"}) == (1.0, "")
    assert format_check("not json", {"expected_format": "json"}) == (0.0, "invalid_json")
    assert format_check("{}", {"json_schema": "{not a schema"}) == (0.0, "bad_schema")
    assert format_check("a,b", {"expected_format": "csv"})[0] == 0.0


def test_checksums() -> None:
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")
    assert iban_ok("NL91ABNA0417164300") and not iban_ok("NL91ABNA0417164301")


def test_score_rows_cover_every_signal() -> None:
    scorer = HeuristicScorer(latency_slo_ms=1000)
    rows = scorer.score("What is my IBAN?", "", model="gpt-4o-mini", latency_ms=2500,
                        input_tokens=1000, output_tokens=0,
                        metadata={"expected_format": "json"})
    by_name = {n: (v, lab) for n, v, lab in rows}
    assert by_name["empty"] == (1.0, "")
    assert by_name["truncated"] == (0.0, "")
    assert by_name["format_valid"] == (0.0, "invalid_json")
    assert by_name["latency_ms"] == (2500, "slow")
    assert by_name["cost_usd"] == (pytest.approx(0.00015), "price_table")
    assert flagged(rows)


def test_cost_sources() -> None:
    scorer = HeuristicScorer(prices=PriceTable.from_json('{"m": [1.0, 2.0]}'))
    cost = {n: (v, lab) for n, v, lab in scorer.score("abcd" * 100, "x" * 400, model="m-2")}
    assert cost["cost_usd"] == (pytest.approx((100 + 200) / 1e6), "estimated")
    reported = dict((n, lab) for n, _, lab in scorer.score("a", "b", cost_usd=0.5))
    assert reported["cost_usd"] == "reported"
    unknown = {n: (v, lab) for n, v, lab in scorer.score("a", "b",
               model="zz", input_tokens=1, output_tokens=1)}
    assert unknown["cost_usd"] == (0.0, "unknown_model")


@pytest.mark.parametrize("meta", [None, {"expected_format": "json"}, {"finish_reason": "stop"}])
def test_the_refusal_score_sits_where_ingest_reads_it(meta: dict[str, str] | None) -> None:
    scores = HeuristicScorer().score("q", "I'm sorry, but I can't help with that.",
                                     latency_ms=5.0, metadata=meta)
    assert scores[REFUSAL_AT][:2] == ("refusal", 1.0)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(
    ["4111 1111 1111 1111", "+44 20 7946 0958", "GB82 WEST 1234 5698 7654 32", "a@b.co",
     "jane.doe", "@", "7", "12", "1-2", "3 4", " ", "-", "(", ")", "+", ".", "AB", "day",
     "078-05-1120", "12345678Z", "QQ 12 34 56 C", "\n", "\u0663", "\u0664 \u0665", "é"]),
    max_size=30).map("".join))
def test_the_pii_gate_never_hides_a_match(text: str) -> None:
    assert pii_kinds(text) == _scan(text, 0)
    # the gate's fast paths find what one regex over the text finds
    first = re.search(r"@|\d[\ -]?\d", text)
    assert _gate(text) == (first.start() if first else -1)
