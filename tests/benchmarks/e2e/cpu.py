"""Where the machine's CPU goes while a worker drains: per thread group, from /proc.

The worker is one Python process, but not one core's worth of work: its main thread
(parsing, scoring, detectors, Faust), aiokafka's consumer thread and other Python
threads, and the embedded ClickHouse engine's threads (inserts, merges, materialized
views; chdb renames the thread that calls into it, so the writer's serialisation counts
there too). Beside it the broker. On a 2-core machine they compete, so a trace's cost is
their sum, not the main thread's alone.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(stat: str) -> float:
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def broker_pid() -> int | None:
    """The local broker's JVM (``kafka.Kafka`` on its command line), if one runs."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if b"kafka.Kafka" in (proc / "cmdline").read_bytes():
                return int(proc.name)
        except OSError:
            continue
    return None


@dataclass(frozen=True)
class Snapshot:
    threads: dict[tuple[int, str], float]  # (thread id, name) -> CPU seconds
    broker: float
    machine_busy: float  # CPU seconds of all cores, not idle
    machine_all: float
    #: the main thread's seconds on a core and runnable but waiting for one (schedstat)
    main_running: float = 0.0
    main_waiting: float = 0.0


def snapshot(pid: int, broker: int | None) -> Snapshot:
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            threads[(int(task.name), name)] = _cpu_seconds((task / "stat").read_text())
        except OSError:
            continue  # the thread ended meanwhile
    broker_cpu = 0.0
    if broker is not None:
        with contextlib.suppress(OSError):  # the broker stopped
            broker_cpu = _cpu_seconds(Path(f"/proc/{broker}/stat").read_text())
    with open("/proc/stat") as fh:
        cpu = [int(v) for v in fh.readline().split()[1:]]
    idle = cpu[3] + cpu[4]  # idle + iowait
    running = waiting = 0.0
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
        running, waiting = int(fields[0]) / 1e9, int(fields[1]) / 1e9
    return Snapshot(threads, broker_cpu, (sum(cpu) - idle) / TICKS, sum(cpu) / TICKS,
                    running, waiting)


def main_thread_states(before: Snapshot, after: Snapshot, wall: float) -> dict[str, float]:
    """Shares of ``wall`` the main thread spent on a core, runnable but waiting for a
    core (the other threads and the broker had them), and neither: waiting for the GIL
    or, rarely while draining, for I/O."""
    running = after.main_running - before.main_running
    waiting = after.main_waiting - before.main_waiting
    return {"on a core": running / wall, "waiting for a core": waiting / wall,
            "waiting for the GIL or I/O": max(0.0, 1 - (running + waiting) / wall)}


def breakdown(pid: int, before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds between two snapshots by group; a thread that ended in between is
    missing from ``after`` and not counted."""
    groups = {"worker main thread": 0.0, "worker other Python threads": 0.0,
              "worker ClickHouse threads (engine + writer)": 0.0}
    for (tid, name), seconds in after.threads.items():
        spent = seconds - before.threads.get((tid, name), 0.0)
        if tid == pid:
            groups["worker main thread"] += spent
        elif name.startswith("python"):
            groups["worker other Python threads"] += spent
        else:
            groups["worker ClickHouse threads (engine + writer)"] += spent
    groups["broker (JVM)"] = after.broker - before.broker
    groups["whole machine, busy"] = after.machine_busy - before.machine_busy
    return groups


def by_name(before: Snapshot, after: Snapshot, top: int = 8) -> list[tuple[str, float]]:
    """CPU seconds between two snapshots per thread name (digits dropped, so a pool's
    threads add up), most first: which of ClickHouse's pools does the work."""
    totals: dict[str, float] = {}
    for (tid, name), seconds in after.threads.items():
        key = name.rstrip("0123456789") or name
        totals[key] = totals.get(key, 0.0) + seconds - before.threads.get((tid, name), 0.0)
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]


def idle_share(before: Snapshot, after: Snapshot) -> float:
    """The share of all cores' time that was idle between two snapshots."""
    busy = after.machine_busy - before.machine_busy
    return 1 - busy / (after.machine_all - before.machine_all)
