"""The detect-suite's outcomes and how they are reported: the table, the bar, the plots."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.bench.scenarios import Scenario


@dataclass
class Outcome:
    scenario: str
    detector: str
    runs: int = 0
    updates: int = 0
    alarms_before: int = 0  # alarms before the change (all alarms, in a control)
    pre_updates: int = 0
    delays: list[float] = field(default_factory=list)  # inf: missed
    #: in a control: updates from its probe point to the first alarm (false, by design)
    null_delays: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def add_run(self, sc: Scenario, alarms: Sequence[int], length: int, seen: int,
                seconds: float) -> None:
        """One run: its alarms' stream indices, the stream's length, how many updates
        the detector saw (a change run stops at its first alarm after the change)."""
        change = sc.change_at
        self.alarms_before += sum(1 for i in alarms if change < 0 or i < change)
        self.pre_updates += length if change < 0 else change
        if change >= 0:
            after = [i for i in alarms if i >= change]
            self.delays.append(after[0] - change if after else math.inf)
        if sc.probe_at >= 0:
            after = [i for i in alarms if i >= sc.probe_at]
            self.null_delays.append(after[0] - sc.probe_at if after else math.inf)
        self.updates += seen
        self.seconds += seconds
        self.runs += 1

    @property
    def mean_run_length(self) -> float:
        return self.pre_updates / self.alarms_before if self.alarms_before else math.inf

    @property
    def fa_per_100k(self) -> float:
        return 1e5 * self.alarms_before / self.pre_updates if self.pre_updates else math.nan

    @property
    def rate(self) -> float:
        return self.updates / self.seconds if self.seconds else math.nan

    def delay_q(self, q: float) -> float:
        return _quantile(self.delays, q)

    @property
    def null_median(self) -> float:
        return _quantile(self.null_delays, 0.5)


def _quantile(values: list[float], q: float) -> float:
    # numpy's quantile of a list holding inf interpolates to nan; order statistics do not
    if not values:
        return math.nan
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, math.floor(q * (len(ordered) - 1) + 0.5))])


def fmt(x: float, digits: int = 0) -> str:
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if isinstance(x, float) and math.isnan(x):
        return "-"
    return f"{x:,.{digits}f}"


HEADERS = ["scenario", "detector", "mean run length, no change", "false alarms / 100k",
           "median delay", "p90 delay", "median delay, no change", "detected", "updates/s"]


def rows(outcomes: list[Outcome], scenarios: dict[str, Scenario]) -> list[list[str]]:
    """One row per (scenario, detector); a change scenario's false-alarm columns and its
    "no change" delay come from its control."""
    by_key = {(o.scenario, o.detector): o for o in outcomes}
    out = []
    for o in outcomes:
        sc = scenarios[o.scenario]
        ctl = by_key.get((sc.control, o.detector), o) if sc.control else o
        change = sc.change_at >= 0
        detected = f"{sum(not math.isinf(d) for d in o.delays)}/{o.runs}" if change else "-"
        out.append([o.scenario, o.detector, fmt(ctl.mean_run_length), fmt(ctl.fa_per_100k, 1),
                    fmt(o.delay_q(0.5)) if change else "-",
                    fmt(o.delay_q(0.9)) if change else "-",
                    fmt(ctl.null_median), detected, fmt(o.rate)])
    return out


def markdown_table(headers: list[str], body: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + [
        "| " + " | ".join(r) + " |" for r in body]


BAR_HEADERS = ["scenario", "best peer", "its false alarms / 100k", "its median delay",
               "driftline at", "false alarms / 100k", "median delay", "delay vs peer",
               "bar met"]


def bar_rows(outcomes: list[Outcome], scenarios: dict[str, Scenario],
             matched: dict[str, str], ours: str = "embedding_cusum") -> list[list[str]]:
    """Per embedding change scenario: the peer with the shortest median delay, and
    driftline's embedding detector at the ERT whose false-alarm rate on the same control
    streams is no higher than that peer's."""
    by_key = {(o.scenario, o.detector): o for o in outcomes}
    out = []
    for name, sc in scenarios.items():
        if sc.signal != "embedding" or sc.change_at < 0:
            continue
        peers = [o for o in outcomes if o.scenario == name and not o.detector.startswith(ours)]
        best = min(peers, key=lambda o: (o.delay_q(0.5), by_key[(sc.control, o.detector)]
                                         .fa_per_100k), default=None)
        if best is None or math.isinf(best.delay_q(0.5)) or best.detector not in matched:
            continue
        mine = by_key.get((name, matched[best.detector]))
        if mine is None:
            continue
        peer_fa = by_key[(sc.control, best.detector)].fa_per_100k
        my_fa = by_key[(sc.control, mine.detector)].fa_per_100k
        peer_d, my_d = best.delay_q(0.5), mine.delay_q(0.5)
        change = (my_d / peer_d - 1) if peer_d > 0 else math.inf
        met = my_d <= peer_d and my_fa <= peer_fa
        out.append([name, best.detector, fmt(peer_fa, 1), fmt(peer_d), mine.detector,
                    fmt(my_fa, 1), fmt(my_d), f"{change:+.0%}" if math.isfinite(change) else "-",
                    "yes" if met else "**no**"])
    return out


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def plot(path: Path, title: str, detector: str, stat: list[float], thr: list[float],
         change_at: int, alarm_at: Sequence[int] = ()) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.plot(stat, lw=0.8, label=f"{detector} statistic")
    ax.plot(thr, lw=1.0, ls="--", color="tab:red", label="threshold")
    if change_at >= 0:
        ax.axvline(change_at, color="k", lw=1, ls=":", label="change")
    if alarm_at:
        # the statistic is recorded after the alarm was acknowledged (reset to 0), so
        # mark alarms at the threshold they crossed
        ax.plot(list(alarm_at), [thr[i] for i in alarm_at], "x", color="tab:red", ms=7,
                label="alarm (then acknowledged)")
    ax.set_xlabel("update")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


