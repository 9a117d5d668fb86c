"""Refusal detection on labelled examples: precision and recall are asserted, not assumed."""

from pipeline.scorers.heuristics import HeuristicScorer, refusal

REFUSALS = [
    "I'm sorry, but I can't help with that request.",
    "I am sorry, I cannot share account details.",
    "I am unable to assist with account-specific questions.",
    "Sorry, I cannot provide information about that topic.",
    "Sorry, but I can't do that.",
    "I can't help with that. Please contact your bank directly.",
    "I cannot process refunds.",
    "I won't be able to do this.",
    "Unfortunately, I can't access your transaction history.",
    "As an AI, I don't have access to your account.",
    "I apologize, but I am not able to change your PIN.",
    "  i'm afraid that is not something I can do.",
    "I must decline to answer that.",
    "I do not have access to personal data.",
]
ANSWERS = [
    "Your card should arrive within 5 working days. Sorry for the wait!",
    "Thanks for getting in touch about card arrival. Open the app and go to Cards.",
    "You can cancel a transfer from Account > Activity if it is still pending.",
    "I can help with that: top-ups by bank transfer take one working day.",
    "Sure. I'm sorry to hear the payment failed; please retry in the app.",
    "If the ATM did not give you cash, we will refund it within 2 days.",
    "Fees are shown before you confirm. I can't see any charge on your card yet.",
    "Here is what you need to know about exchange rates.",
    "Yes, we support 30 currencies.",
    "",
]


def test_refusal_precision_and_recall() -> None:
    tp = sum(refusal(t) for t in REFUSALS)
    fp = sum(refusal(t) for t in ANSWERS)
    recall = tp / len(REFUSALS)
    precision = tp / (tp + fp)
    assert recall == 1.0, [t for t in REFUSALS if not refusal(t)]
    assert precision == 1.0, [t for t in ANSWERS if refusal(t)]


def test_length_ratio() -> None:
    def ratio(question: str, answer: str) -> float:
        return dict((n, v) for n, v, _ in HeuristicScorer().score(question, answer))[
            "length_ratio"]

    assert ratio("", "abc") == 3.0
    assert ratio("abcd", "") == 0.0
