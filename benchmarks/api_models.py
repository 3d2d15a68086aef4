"""Ingest-path benchmark of the API model libraries: decode + validate a JSON
metrics batch with msgspec and with pydantic v2, against a ``json.loads`` floor.

    python benchmarks/api_models.py [--points 1000 10000] [--rounds 7]

Per body (the row form and the compact columnar form, 1k and 10k points): µs
per point of ``json.loads`` (the floor), of today's path (``orjson.loads`` +
``wanllm_server.store.batches``), of ``msgspec.json.decode(type=...)`` with the
models of ``wanllm_jupyter.core.api``, and of ``TypeAdapter.validate_json``
with equivalent pydantic models; each also as a ratio to the floor.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec
import orjson
import pydantic
from wanllm_server.store.batches import metric_batch_from_columns
from wanllm_server.store.metric_rows import metric_batch_from_rows

from wanllm_jupyter.core import limits as L
from wanllm_jupyter.core.api import ColumnarBatch, MetricBatch

NAMES = 10  # metrics per run, as in benchmarks/server.py


class _P(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


Name = Annotated[str, pydantic.Field(min_length=1, max_length=L.MAX_METRIC_NAME_LENGTH)]
Step = Annotated[int, pydantic.Field(ge=L.INT64_MIN, le=L.INT64_MAX)]
Wire = float | Literal["NaN", "Infinity", "-Infinity"]


class PRow(_P):
    run_id: str
    metric_name: Name
    value: Wire
    step: Step | None = None
    time: str | float | None = None
    metadata: dict[str, Any] | None = None


class PRows(_P):
    metrics: list[PRow]
    batch_id: str | None = None
    format: Literal["rows"] | None = None


class PColumns(_P):
    run_id: str
    names: list[Name]
    k: list[Annotated[int, pydantic.Field(ge=0, le=L.INT32_MAX)]]
    s: list[Step | None]
    v: list[Wire]
    t: list[float | None] | None = None
    batch_id: str | None = None
    format: Literal["columnar"] | None = None


def bodies(n: int) -> dict[str, tuple[bytes, type, type, Callable[[bytes], Any]]]:
    run_id, t0 = str(uuid.uuid4()), time.time()
    rows = [
        {"run_id": run_id, "metric_name": f"train/m{i % NAMES}", "step": i // NAMES,
         "time": t0 + i * 1e-3, "value": i * 0.5}
        for i in range(n)
    ]  # fmt: skip
    columns = {
        "run_id": run_id,
        "names": [f"train/m{j}" for j in range(NAMES)],
        "k": [i % NAMES for i in range(n)],
        "s": [i // NAMES for i in range(n)],
        "t": [t0 + i * 1e-3 for i in range(n)],
        "v": [i * 0.5 for i in range(n)],
    }

    def today_rows(raw: bytes) -> Any:
        return metric_batch_from_rows(orjson.loads(raw)["metrics"], "b")

    def today_columns(raw: bytes) -> Any:
        b = orjson.loads(raw)
        return metric_batch_from_columns(b["run_id"], b["names"], b["k"], b["s"], b["t"], b["v"])

    return {
        f"rows {n}": (orjson.dumps({"metrics": rows}), MetricBatch, PRows, today_rows),
        f"columnar {n}": (orjson.dumps(columns), ColumnarBatch, PColumns, today_columns),
    }


def us_per_point(fn: Callable[[], object], points: int, rounds: int) -> float:
    calls = max(1, 20_000 // points)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls / points * 1e6)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, nargs="+", default=[1000, 10_000])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    print(f"{'body':<16} {'json.loads':>11} {'today':>14} {'msgspec':>14} {'pydantic':>14}")
    for n in args.points:
        for label, (raw, model, pmodel, today) in bodies(n).items():
            decoder = msgspec.json.Decoder(model)
            adapter = pydantic.TypeAdapter(pmodel)
            floor = us_per_point(lambda raw=raw: json.loads(raw), n, args.rounds)
            cells = [f"{floor:>9.3f}µs"]
            for fn in (today, decoder.decode, adapter.validate_json):
                us = us_per_point(lambda fn=fn, raw=raw: fn(raw), n, args.rounds)
                cells.append(f"{us:>6.3f}µs {us / floor:>4.2f}x")
            print(f"{label:<16} " + " ".join(cells))


if __name__ == "__main__":
    main()
