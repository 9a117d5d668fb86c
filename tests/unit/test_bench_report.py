"""detect-suite's bookkeeping: delays, false alarms, the delay without change, the bar."""

import math

import numpy as np

from pipeline.bench.report import Outcome, bar_rows, rows
from pipeline.bench.scenarios import Scenario


def scenario(name: str, change_at: int, control: str = "", probe_at: int = -1) -> Scenario:
    return Scenario(name, "embedding", change_at, lambda r: np.zeros(1), control=control,
                    probe_at=probe_at)


CONTROL = scenario("no change", -1, probe_at=100)
CHANGE = scenario("change", 100, control="no change")
SCENARIOS = {s.name: s for s in (CONTROL, CHANGE)}


def test_a_run_counts_false_alarms_before_the_change_and_the_delay_after_it() -> None:
    o = Outcome("change", "d")
    o.add_run(CHANGE, [10, 50, 130], length=400, seen=131, seconds=1.0)
    o.add_run(CHANGE, [20], length=400, seen=400, seconds=1.0)
    assert (o.alarms_before, o.pre_updates, o.delays) == (3, 200, [30, math.inf])
    assert o.delay_q(0.5) == math.inf and o.delay_q(0.0) == 30
    control = Outcome("no change", "d")
    control.add_run(CONTROL, [40, 180, 300], length=1000, seen=1000, seconds=1.0)
    assert control.mean_run_length == 1000 / 3 and control.null_delays == [80]


def outcome(sc: Scenario, det: str, alarms: list[list[int]], length: int = 1000) -> Outcome:
    o = Outcome(sc.name, det)
    for a in alarms:
        o.add_run(sc, a, length, length, 1.0)
    return o


def test_the_bar_compares_at_no_more_false_alarms_than_the_fastest_peer() -> None:
    outcomes = [
        outcome(CONTROL, "embedding_cusum", [[500]]),
        outcome(CONTROL, "peer_fast", [[200, 700]]),  # 2 false alarms per 1,000
        outcome(CONTROL, "peer_slow", [[]]),
        outcome(CONTROL, "embedding_cusum@900", [[650]]),  # 1 per 1,000: no more than peer
        outcome(CHANGE, "embedding_cusum", [[300]]),
        outcome(CHANGE, "peer_fast", [[160]]),
        outcome(CHANGE, "peer_slow", [[900]]),
        outcome(CHANGE, "embedding_cusum@900", [[140]]),
    ]
    bar = bar_rows(outcomes, SCENARIOS, {"peer_fast": "embedding_cusum@900"})
    assert bar == [["change", "peer_fast", "200.0", "60", "embedding_cusum@900", "100.0", "40",
                    "-33%", "yes"]]
    slower = [o if o.detector != "embedding_cusum@900" or o.scenario != "change"
              else outcome(CHANGE, o.detector, [[190]]) for o in outcomes]
    assert bar_rows(slower, SCENARIOS, {"peer_fast": "embedding_cusum@900"})[0][-1] == "**no**"
    table = rows(outcomes, SCENARIOS)
    # a change row shows its control's false alarms and delay without change
    fast = next(r for r in table if r[:2] == ["change", "peer_fast"])
    assert fast[3] == "200.0" and fast[6] == "100"
