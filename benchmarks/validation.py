"""Row-form validation benchmark: µs per row of ``metric_batch_from_rows`` on
1,000-row bodies (the seed's ``{"metrics": [...]}`` form, its max batch size).

    python benchmarks/validation.py [--rows 1000] [--rounds 7]

Per body shape: the floor (``orjson.loads`` of the same body, which the HTTP
handler does first), the per-row reference validator (every row checked one by
one: the path before the column-at-a-time fast path, still taken by any body
with an error), and ``metric_batch_from_rows``. Target: <= 1 µs/row.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import orjson
from wanllm_server.store.metric_rows import checked_metric_rows, metric_batch_from_rows

NAMES = 10  # metrics per run, as in benchmarks/server.py


def shapes(n: int) -> dict[str, list[dict[str, Any]]]:
    """Row bodies: the bundled benchmark's rows, rows without step/time, a few non-finite."""
    run_id, t0 = str(uuid.uuid4()), time.time()
    full = [
        {"run_id": run_id, "metric_name": f"train/m{i % NAMES}", "step": i // NAMES,
         "time": t0 + i * 1e-3, "value": float(v)}
        for i, v in enumerate(np.random.rand(n))
    ]  # fmt: skip
    minimal = [{k: r[k] for k in ("run_id", "metric_name", "value")} for r in full]
    nonfinite = [{**r, "value": "NaN"} if i % 100 == 0 else r for i, r in enumerate(full)]
    return {"run_id+name+step+time+value": full, "run_id+name+value": minimal,
            "1% \"NaN\" values": nonfinite}  # fmt: skip


def us_per_row(fn: Callable[[], object], rows: int, rounds: int, calls: int = 50) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls / rows * 1e6)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    print(f"{'body':<30} {'orjson.loads':>12} {'per-row':>9} {'rows fast':>10} {'fast/floor':>10}")
    for label, body in shapes(args.rows).items():
        raw = orjson.dumps({"metrics": body})
        rows = orjson.loads(raw)["metrics"]
        floor, before, after = (
            us_per_row(partial(fn, *fn_args), args.rows, args.rounds)
            for fn, *fn_args in ((orjson.loads, raw), (checked_metric_rows, rows, "b"),
                                 (metric_batch_from_rows, rows, "b"))
        )  # fmt: skip
        ratio = after / floor
        print(f"{label:<30} {floor:>10.2f}µs {before:>7.2f}µs {after:>8.2f}µs {ratio:>9.1f}x")


if __name__ == "__main__":
    main()
