"""`driftline bench detect`: one detector, one stream, one JSON line (a stable interface)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import orjson
import typer

from pipeline.bench.common import SCORE_FIELDS, Signal, bench_app
from pipeline.bench.embedding import DEFAULT_EMBEDDER, embedder_for
from pipeline.bench.runners import DETECTORS, make_runner


# --------------------------------------------------------------------------------------
# `driftline bench detect`
# --------------------------------------------------------------------------------------
def _lookup(obj: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, dict) or part not in obj:
            raise KeyError(dotted)
        obj = obj[part]
    return obj


def _input_text(trace: dict[str, Any]) -> str:
    value = trace.get("input", "")
    if isinstance(value, list):  # chat messages
        return "\n".join(str(m.get("content", "")) for m in value if isinstance(m, dict))
    return str(value)


def read_signal(path: Path, signal: str) -> list[Any]:
    """Texts (embedding) or floats (judge, flag) from a JSONL file of traces."""
    out: list[Any] = []
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            trace = orjson.loads(line)
            if signal == "embedding":
                out.append(_input_text(trace))
            else:
                try:
                    out.append(float(_lookup(trace, SCORE_FIELDS[signal])))
                except (KeyError, TypeError, ValueError):
                    raise typer.BadParameter(
                        f"{path}:{n}: no number at {SCORE_FIELDS[signal]}") from None
    return out


def run_detect(reference: Sequence[Any], stream: Sequence[Any], signal: str,
               detector: str | None = None, ert: float = 2000.0,
               embedder: str = DEFAULT_EMBEDDER) -> dict[str, Any]:
    """The whole of `bench detect` without the file reading; alarms are 0-based indices."""
    name = detector or DETECTORS[signal][0]
    if signal == "embedding":
        fn = embedder_for(embedder)
        ref, xs = fn(reference), fn(stream)
    else:
        ref, xs = np.asarray(reference, dtype=float), list(stream)
    runner = make_runner(signal, name, ref, ert=ert)
    alarms = []
    start = time.perf_counter()
    for i, x in enumerate(xs):
        if runner.step(x):
            alarms.append(i)
    return {"alarms": alarms, "updates": len(xs), "seconds": time.perf_counter() - start}


@bench_app.command("detect")
def detect(
    reference: Annotated[Path, typer.Option(help="JSONL traces: the reference")],
    stream: Annotated[Path, typer.Option(help="JSONL traces: the stream to watch")],
    signal: Annotated[Signal, typer.Option(help="embedding (of `input`), judge "
                                                "(scores.judge), flag (scores.flag)")],
    detector: Annotated[str | None, typer.Option(help="detector name; default: driftline's "
                                                      "for the signal")] = None,
    ert: Annotated[float, typer.Option(help="expected updates between false alarms")] = 2000.0,
    embedder: Annotated[str, typer.Option(help="embedder of `input` for --signal embedding, "
                                               "as DRIFTLINE_EMBEDDER")] = DEFAULT_EMBEDDER,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Run one detector over STREAM against REFERENCE; print the alarms' stream indices.

    Alarms are acknowledged as they are raised, so a persisting change can alarm again
    after the detector re-arms. `seconds` is the update loop only (not reading or
    embedding).
    """
    result = run_detect(read_signal(reference, signal.value), read_signal(stream, signal.value),
                        signal.value, detector, ert, embedder)
    if as_json:
        typer.echo(orjson.dumps(result).decode())
    else:
        typer.echo(f"{len(result['alarms'])} alarms in {result['updates']} updates "
                   f"({result['seconds']:.3f} s): {result['alarms'][:20]}")


