"""The simulator plays a model at temperature 0: its answers do not depend on call order."""

from __future__ import annotations

from openai import OpenAI

from pipeline.simulator import SimulatorConfig, SimulatorThread

QUESTIONS = [f"How do I top up with card number {i}?" for i in range(60)]


def _answers(client: OpenAI, model: str, questions: list[str]) -> dict[str, str]:
    out = {}
    for q in questions:
        reply = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": q}])
        out[q] = reply.choices[0].message.content or ""
    return out


def test_answers_depend_on_seed_model_and_text_not_on_call_order() -> None:
    config = SimulatorConfig(base_refusal_rate=0.3, seed=4)
    with SimulatorThread(config) as first, SimulatorThread(config) as second:
        a = _answers(OpenAI(base_url=first.base_url, api_key="k"), "sim-a", QUESTIONS)
        other = OpenAI(base_url=second.base_url, api_key="k")
        _answers(other, "sim-a", [f"unrelated {i}" for i in range(17)])
        b = _answers(other, "sim-a", QUESTIONS[::-1])
    assert a == b
    refused = sum(text.startswith("I'm sorry") for text in a.values())
    assert 5 <= refused <= 35, refused  # ~30 % of 60, not all or none


def test_a_different_seed_refuses_different_texts() -> None:
    answers = []
    for seed in (1, 2):
        with SimulatorThread(SimulatorConfig(base_refusal_rate=0.5, seed=seed)) as sim:
            answers.append(_answers(OpenAI(base_url=sim.base_url, api_key="k"), "m", QUESTIONS))
    assert answers[0] != answers[1]
