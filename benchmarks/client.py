"""Logging-client benchmark (issue 4): wanllm vs trackio and wandb (offline), same run.

    python benchmarks/client.py [--points 1000000] [--calls 100000] [--skip-peers] [--no-pg]

Measures, for a dict of 10 scalars:
1. ``log()`` overhead per call (median, p99) — plus a bare ``list.append`` of the dict;
2. end-to-end points/s until durable for ``--points`` points (wanllm: until ``finish()``
   returns with everything committed by the server — SQLite and TimescaleDB backends;
   trackio: until ``finish()`` returns, its local SQLite written);
3. ``history()`` of those points into a pandas DataFrame.

trackio and wandb run in their own venv (``benchmarks/.venv-peers``, gitignored;
created on first use with ``pip install trackio wandb pandas``) in a subprocess.
wandb's history is read back from its offline ``.wandb`` file: wandb ≥ 0.31 ships
no reader for it (``wandb.sdk.internal.datastore`` is gone, and its public API
needs a server), so the peer script undoes the file's LevelDB-log framing itself
and parses each record with wandb's own protobuf classes, as that reader did.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS_VENV = HERE / ".venv-peers"
sys.path.insert(0, str(ROOT))  # for tests.jupyter_process and tests.services

PAYLOAD_SRC = "{f'm{j}': 0.001 * j for j in range(10)}"


def overhead(log: Any, calls: int) -> dict[str, float]:
    """Median and p99 of ``log(payload)`` in µs over ``calls`` calls (payload varies per call)."""
    pc = time.perf_counter_ns
    payloads = [{f"m{j}": 0.001 * j + i for j in range(10)} for i in range(min(calls, 1000))]
    samples = []
    for i in range(calls):
        p = payloads[i % len(payloads)]
        t = pc()
        log(p)
        samples.append(pc() - t)
    samples.sort()
    return {
        "median_us": samples[len(samples) // 2] / 1e3,
        "p99_us": samples[int(len(samples) * 0.99)] / 1e3,
    }


# ------------------------------------------------------------------ peers (own venv)
PEER_SCRIPT = r"""
import json, os, sys, time, tempfile, statistics
which, calls, points = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.environ.setdefault("WANDB_SILENT", "true")
payloads = [{f"m{j}": 0.001 * j + i for j in range(10)} for i in range(1000)]
def overhead(log):
    pc = time.perf_counter_ns; s = []
    for i in range(calls):
        p = payloads[i % 1000]; t = pc(); log(p); s.append(pc() - t)
    s.sort(); return {"median_us": s[len(s)//2] / 1e3, "p99_us": s[int(len(s)*0.99)] / 1e3}
out = {}
work = tempfile.mkdtemp()
os.chdir(work)
if which == "trackio":
    os.environ["TRACKIO_DIR"] = work
    import trackio
    trackio.init(project="bench-overhead")
    out["overhead"] = overhead(trackio.log)
    trackio.finish()
    trackio.init(project="bench-e2e", name="e2e")
    t = time.perf_counter()
    for i in range(points // 10):
        trackio.log(payloads[i % 1000])
    trackio.finish()
    out["e2e_points_per_s"] = points / (time.perf_counter() - t)
    try:
        from trackio.sqlite_storage import SQLiteStorage
        import pandas as pd
        t = time.perf_counter()
        logs = SQLiteStorage.get_logs(project="bench-e2e", run="e2e")
        df = pd.DataFrame(logs)
        out["history_s"] = time.perf_counter() - t
        out["history_rows"] = int(len(df))
    except Exception as e:
        out["history_error"] = repr(e)
elif which == "wandb":
    import wandb
    run = wandb.init(project="bench", mode="offline", dir=work)
    out["overhead"] = overhead(wandb.log)
    for i in range(max(0, points // 10 - calls)):
        wandb.log(payloads[i % 1000])
    wandb.finish()
    try:
        import glob, struct, pandas as pd
        from wandb.proto import wandb_internal_pb2 as pb
        def wandb_records(path):
            # the LevelDB log framing of .wandb files: 7-byte ":W&B" header, then
            # 32 KiB blocks of records (crc32 u32, length u16, type u8: 1 full,
            # 2 first, 3 middle, 4 last); a block tail shorter than a header is padding
            data = open(path, "rb").read()
            if data[:4] != b":W&B":
                raise ValueError(f"{path}: not a .wandb file")
            pos, frags = 7, []
            while pos + 7 <= len(data):
                room = 32768 - pos % 32768
                if room < 7:
                    pos += room
                    continue
                n, kind = struct.unpack_from("<HB", data, pos + 4)
                if kind == 0:  # zero padding up to the block end
                    pos += room
                    continue
                frags.append(data[pos + 7 : pos + 7 + n])
                pos += 7 + n
                if kind in (1, 4):
                    yield b"".join(frags)
                    frags = []
        path = glob.glob(f"{work}/wandb/offline-run-*/run-*.wandb")[0]
        t = time.perf_counter()
        rows = []
        for raw in wandb_records(path):
            rec = pb.Record(); rec.ParseFromString(raw)
            if rec.WhichOneof("record_type") == "history":
                rows.append({it.key or "/".join(it.nested_key): json.loads(it.value_json)
                             for it in rec.history.item})
        df = pd.DataFrame(rows)
        out["history_s"] = time.perf_counter() - t
        out["history_rows"] = int(len(df))
    except Exception as e:
        out["history_error"] = repr(e)
print("RESULT " + json.dumps(out))
"""


def ensure_peers() -> Path | None:
    py = PEERS_VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    (PEERS_VENV / ".gitignore").write_text("*\n")  # keep the venv out of git
    if subprocess.run(
        [str(py), "-c", "import trackio, wandb, pandas"], capture_output=True
    ).returncode:
        subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "trackio", "wandb", "pandas"], check=True
        )
    return py


def run_peer(py: Path, which: str, calls: int, points: int) -> dict[str, Any]:
    out = subprocess.run(
        [str(py), "-c", PEER_SCRIPT, which, str(calls), str(points)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (out.stderr or out.stdout)[-500:]}


# ------------------------------------------------------------------ wanllm
def wanllm_overhead(calls: int) -> dict[str, float]:
    import wanllm_jupyter as wl

    with tempfile.TemporaryDirectory() as d:
        wl.init(project="bench", mode="offline", dir=d, system_metrics=False)
        res = overhead(wl.log, calls)
        wl.finish(quiet=True)
    return res


def wanllm_e2e(points: int, database_url: str | None) -> dict[str, float]:
    """Points/s until finish() returns with all points committed (default server config:
    the client sends Arrow batches of up to ``max_columnar_batch_size`` points); then
    ``history()`` of those points into a DataFrame (best of 3, after one warm-up call)."""
    import wanllm_jupyter as wl
    from tests.jupyter_process import JupyterServer

    with tempfile.TemporaryDirectory() as d:
        server = JupyterServer(Path(d), database_url=database_url, base_url="/jp/").start()
        try:
            api = wl.Api(server.url, server.token)
            run = wl.init(project="bench", connection=api.connection, system_metrics=False, dir=d)
            payloads = [{f"m{j}": 0.001 * j + i for j in range(10)} for i in range(1000)]
            t = time.perf_counter()
            for i in range(points // 10):
                wl.log(payloads[i % 1000])
            wl.finish(quiet=True, timeout=3600)
            report = run.report
            e2e = time.perf_counter() - t
            assert report is not None and report.sent_points == points, report
            stored = api.run(run.id)
            first = time.perf_counter()
            df = stored.history()
            first = time.perf_counter() - first
            assert len(df) == points // 10 and df.shape[1] == 12
            hist = []
            for _ in range(3):
                t = time.perf_counter()
                stored.history()
                hist.append(time.perf_counter() - t)
        finally:
            server.stop()
    return {"e2e_points_per_s": points / e2e, "history_s": min(hist), "history_first_s": first}


def timescale_url() -> tuple[Any, str] | None:
    try:
        from tests.services import PostgresCluster
    except ImportError:
        return None
    try:
        cluster = PostgresCluster(timescaledb=True).start()
        return cluster, cluster.create_database("bench")
    except Exception as exc:
        print(f"(TimescaleDB cluster not available: {exc})")
        return None


def fmt(v: Any, spec: str = ".2f") -> str:
    return format(v, spec) if isinstance(v, (int, float)) else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--no-pg", action="store_true")
    args = ap.parse_args()

    bare: list[Any] = []
    res: dict[str, dict[str, Any]] = {
        "bare append": {"overhead": overhead(bare.append, args.calls)}
    }
    res["wanllm"] = {"overhead": wanllm_overhead(args.calls)}
    res["wanllm"].update(wanllm_e2e(args.points, None))
    if not args.no_pg and (pg := timescale_url()) is not None:
        cluster, url = pg
        try:
            res["wanllm (TimescaleDB)"] = wanllm_e2e(args.points, url)
        except Exception as exc:
            print(f"(TimescaleDB e2e failed: {exc!r:.300})")
        finally:
            cluster.destroy()
    if not args.skip_peers:
        py = ensure_peers()
        for peer in ("trackio", "wandb"):
            r = run_peer(py, peer, args.calls, args.points)  # type: ignore[arg-type]
            res[f"{peer}" + (" (offline)" if peer == "wandb" else "")] = r
            if "error" in r or "history_error" in r:
                print(f"({peer}: {r.get('error') or r.get('history_error')})")

    ours = res["wanllm"]
    tr = res.get("trackio", {})
    print(f"\nlog() of 10 scalars ({args.calls} calls), e2e and history() of {args.points} points")
    print(f"{'':24}{'log med µs':>11}{'log p99 µs':>11}{'e2e pts/s':>12}{'history s':>11}")
    for name, r in res.items():
        o = r.get("overhead", {})
        print(
            f"{name:24}{fmt(o.get('median_us')):>11}{fmt(o.get('p99_us')):>11}"
            f"{fmt(r.get('e2e_points_per_s'), ',.0f'):>12}{fmt(r.get('history_s')):>11}"
        )
    for name, r in res.items():
        if r.get("history_first_s"):
            print(f"{name}: first history() call {r['history_first_s']:.2f} s (table: best of 3)")
    print(f"machine load (uptime): {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}")
    print("\nratios (wanllm vs peer; >1 = wanllm better)")
    for name, r in res.items():
        if name.startswith("wanllm") or name == "bare append":
            continue
        o = r.get("overhead", {})
        if o:
            print(
                f"  log() median: {name} / wanllm = "
                f"{o['median_us'] / ours['overhead']['median_us']:.1f}x"
            )
        for own in ("wanllm", "wanllm (TimescaleDB)"):
            if r.get("history_s") and res.get(own, {}).get("history_s"):
                ratio = r["history_s"] / res[own]["history_s"]
                print(f"  history():    {name} / {own} = {ratio:.1f}x")
    if tr.get("e2e_points_per_s"):
        for name in ("wanllm", "wanllm (TimescaleDB)"):
            if res.get(name, {}).get("e2e_points_per_s"):
                print(
                    f"  e2e:          {name} / trackio = "
                    f"{res[name]['e2e_points_per_s'] / tr['e2e_points_per_s']:.2f}x"
                )
    print(
        "targets: log() median ≤ 1 µs; e2e ≥ 1.5× trackio (SQLite), ≥ 1× (TimescaleDB); "
        "history() ≤ 0.6 s"
    )


if __name__ == "__main__":
    os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
    main()
