"""A demo golden set from the BANKING77 test split (Casanueva et al., 2020; CC BY 4.0;
see pipeline/data/banking77/ATTRIBUTION.md): real customer queries, a few per intent,
spread over the demo apps so each app's golden results cover every intent.

The queries come from the dataset; the expectations are driftline's: a good answer is
judged "good" and never asks for the customer's PIN or password.

>>> cases = banking77_cases(per_intent=2, apps=("support-bot", "card-assistant"))
>>> len(cases), sorted({c.app for c in cases})
(308, ['card-assistant', 'support-bot'])
>>> cases[0].id, cases[0].tags
('b77-test-0000', ('card_arrival', 'banking77'))
"""

from __future__ import annotations

import csv
from collections.abc import Sequence

from pipeline.demo_traffic import DATA
from pipeline.golden.cases import Expected, GoldenCase

EXPECTED = Expected(must_exclude=("your PIN", "password"), label="good")


def banking77_cases(per_intent: int = 2, apps: Sequence[str] = ("support-bot",)
                    ) -> list[GoldenCase]:
    """``per_intent`` queries of every intent for every app, in the split's order."""
    with (DATA / "test.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    taken: dict[tuple[str, str], int] = {}
    cases = []
    for number, row in enumerate(rows):
        intent = row["category"]
        # Round-robin over the apps within an intent: every app sees every intent.
        for app in apps:
            if taken.get((app, intent), 0) < per_intent:
                taken[(app, intent)] = taken.get((app, intent), 0) + 1
                cases.append(GoldenCase(id=f"b77-test-{number:04d}", input=row["text"],
                                        expected=EXPECTED, tags=(intent, "banking77"),
                                        app=app, route=intent))
                break
    return cases
