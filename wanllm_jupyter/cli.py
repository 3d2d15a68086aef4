"""The ``wanllm`` command: ``sync`` offline runs, list ``runs``, ``export`` histories,
run the ``server`` on its own."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ._discovery import find_connection
from ._http import Connection
from ._spool import default_root
from .core.errors import UsageError, WanllmError


def _connection(args: argparse.Namespace) -> Connection | None:
    if args.url:
        return Connection(args.url, args.token or "")
    return find_connection()


def cmd_sync(args: argparse.Namespace) -> int:
    conn = _connection(args)
    if conn is None:
        print(
            "wanllm sync: no server reachable (set WANLLM_URL/WANLLM_TOKEN or --url)",
            file=sys.stderr,
        )
        return 2
    failed = 0
    for root in _sync_roots(args.dir):
        failed += _sync_root(root, conn, args.retry_rejected)
    return 1 if failed else 0


def _sync_roots(dir: str | None) -> list[Path]:
    """The spool root, and ``./wanllm`` when it holds runs from before spools moved to
    Jupyter's data directory (and no directory was named)."""
    root = default_root(dir)
    legacy = Path.cwd().resolve() / "wanllm"
    named = dir or os.environ.get("WANLLM_DIR")
    return [root] if named or legacy == root or not (legacy / "runs").is_dir() else [root, legacy]


def _sync_root(root: Path, conn: Connection, retry_rejected_first: bool) -> int:
    """Sync the runs under ``root``; how many failed."""
    from ._sync import retry_rejected, sync

    failed = 0
    if retry_rejected_first:
        for retried in retry_rejected(root, conn):
            if retried.sent is None:
                print(f"{retried.run_id}: skipped (a running process is still writing it)")
                continue
            failed += bool(retried.left)
            print(
                f"{retried.run_id}: {retried.sent} set-aside operations sent, "
                f"{retried.left} still set aside" + (f": {retried.error}" if retried.error else "")
            )
    results = sync(root, conn)
    for r in results:
        run = r.path.parent.name
        aside = f", {r.set_aside} set aside" if r.set_aside else ""
        if r.error:
            failed += 1
            print(f"{run}: FAILED after {r.ops} operations{aside}: {r.error}")
        elif r.ops is None:
            print(f"{run}: skipped (a running process is still writing it)")
        else:
            print(f"{run}: {r.ops} operations synced{aside}")
    if not results and not retry_rejected_first:
        print(f"nothing to sync under {root}")
    _print_set_aside(root)
    return failed


def _print_set_aside(root: Path) -> None:
    """One line per run under ``root`` holding operations the server would not take."""
    from ._rejected import summaries

    found = summaries(root)
    for s in found:
        print(f"{s.run_id}: {s.describe()}")
    if found:
        print("(`wanllm sync --retry-rejected` sends them again)")


def cmd_runs(args: argparse.Namespace) -> int:
    from .api import Api

    api = Api(
        connection=_connection(args) if not args.offline else None,
        dir=args.dir,
        offline=args.offline,
    )
    filters = ([args.query] if args.query else []) + (args.filter or [])
    df = api.runs(args.project, filters=filters, state=args.state, limit=args.limit)
    cols = [c for c in ("id", "name", "project", "state", "created_at") if c in df.columns]
    cols += [c for c in df.columns if c.startswith("summary.")][:4]
    print(df[cols].to_string(index=False) if len(df) else "no runs")
    _print_set_aside(default_root(args.dir))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from tqdm import tqdm

    from ._frames import LONG_SCHEMA
    from .api import Api, named_as_typed, typed_ids

    fmt = export_format(args.output, args.format)
    api = Api(
        connection=_connection(args) if not args.offline else None,
        dir=args.dir,
        offline=args.offline,
    )
    ids = typed_ids(args.runs)
    keys = args.keys.split(",") if args.keys else None
    plan = []
    with named_as_typed(ids):
        for rid in ids:
            infos = api._src.metric_names(rid)
            plan += [
                (rid, m["name"], m["count"]) for m in infos if keys is None or m["name"] in keys
            ]
    writer = (
        pq.ParquetWriter(args.output, LONG_SCHEMA)
        if fmt == "parquet"
        else pacsv.CSVWriter(args.output, LONG_SCHEMA)
    )
    with (
        writer,
        tqdm(total=sum(n for *_, n in plan), unit="pt", unit_scale=True, disable=args.quiet) as bar,
    ):
        for rid, name, _ in plan:
            table: pa.Table = api._src.history([rid], [name], None, None)
            writer.write_table(table.cast(LONG_SCHEMA))
            bar.update(table.num_rows)
    if not args.quiet:
        print(f"wrote {sum(n for *_, n in plan)} points of {len(ids)} run(s) to {args.output}")
    return 0


EXPORT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def export_format(output: Path, given: str | None) -> str:
    """``--format`` when given, else the one ``output``'s suffix names; UsageError for
    any other suffix (never a Parquet file named ``.xlsx``)."""
    if given:
        return given
    fmt = EXPORT_FORMATS.get(output.suffix.lower())
    if fmt is None:
        raise UsageError(
            f"cannot write {str(output)!r}: unknown format {output.suffix or '(no suffix)'!r}; "
            f"name the file {' or '.join(EXPORT_FORMATS)}, or pass --format csv|parquet"
        )
    return fmt


def cmd_server(argv: Sequence[str]) -> int:
    """Run the wanllm server on its own (the server package's standalone launch)."""
    from wanllm_server.standalone import main as serve

    serve(argv)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wanllm", description=__doc__)
    p.add_argument("--url", help="server base URL (default: $WANLLM_URL or discovery)")
    p.add_argument("--token", help="server token (default: $WANLLM_TOKEN)")
    p.add_argument(
        "--dir", help="directory holding wanllm/ (default: $WANLLM_DIR, else Jupyter's data dir)"
    )
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sync", help="send runs logged offline to the server")
    s.add_argument(
        "--retry-rejected",
        action="store_true",
        help="first send again the operations the server would not take (set aside)",
    )
    s.set_defaults(func=cmd_sync)
    r = sub.add_parser("runs", help="list runs")
    r.add_argument(
        "query",
        nargs="?",
        help="the sidebar's query language, e.g. 'state:finished tag:cli OR config.lr>=0.01' "
        "(docs/filters.md)",
    )
    r.add_argument("--project")
    r.add_argument("--state", action="append")
    r.add_argument(
        "--filter", action="append", help="one more query that must hold too (repeatable)"
    )
    r.add_argument("--limit", type=int, default=100)
    r.add_argument("--offline", action="store_true", help="list local (offline) runs")
    r.set_defaults(func=cmd_runs)
    e = sub.add_parser("export", help="export metric histories (long form) to CSV or Parquet")
    e.add_argument("runs", nargs="+", help="run ids")
    e.add_argument("-o", "--output", type=Path, required=True)
    e.add_argument(
        "--format",
        choices=("csv", "parquet"),
        help="default: from the file suffix (.csv, .parquet or .pq; any other is refused)",
    )
    e.add_argument("--keys", help="comma-separated metric names (default: all)")
    e.add_argument("--offline", action="store_true", help="export local (offline) runs")
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(func=cmd_export)
    sub.add_parser(
        "server",
        help="run the tracker's server on its own (Jupyter server options follow, e.g. "
        "--ip=0.0.0.0 --port=8765 --WanllmApp.idle_timeout=0; same as `jupyter wanllm`)",
        add_help=False,
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wanllm`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["server"]:  # every later option is the server's
        return cmd_server(argv[1:])
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (WanllmError, ValueError, OSError) as exc:
        print(f"wanllm {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
