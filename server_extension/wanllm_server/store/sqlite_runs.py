"""Runs on SQLite: row <-> :class:`Run` mapping and the run-list query builder.

Filter/sort fields: the columns in :data:`COLUMNS`, ``git.<branch|commit|
dirty|remote>``, and dotted JSON paths under ``config.``, ``summary.`` and
``metadata.``. Ordering comparisons (lt/le/gt/ge) on JSON paths only match
values of the same JSON kind as the operand (numbers compare numerically).
Sorting puts missing values last in both directions; pagination is keyset on
``(value is null, value, id)`` through :mod:`.cursor`.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import orjson

from wanllm_jupyter._run_filters import COLUMNS

from .base import GitInfo, InvalidQuery, Run, RunFilter, RunQuery
from .cursor import decode_cursor

GIT_COLUMNS = {f"git.{k}": f"git_{k}" for k in ("branch", "commit", "dirty", "remote")}
JSON_COLUMNS = frozenset({"config", "summary", "metadata"})
RUN_COLUMNS = (
    "id, project, name, state, config, summary, tags, notes, git_branch, git_commit, git_dirty, "
    "git_remote, host, metadata, exit_code, created_at, updated_at, heartbeat_at, finished_at"
)
_SCALAR = (str, int, float, bool, type(None))


def run_from_row(row: sqlite3.Row | tuple[Any, ...]) -> Run:
    (rid, project, name, state, config, summary, tags, notes, branch, commit, dirty, remote,
     host, metadata, exit_code, created, updated, heartbeat, finished) = row[:19]  # fmt: skip
    return Run(
        id=uuid.UUID(rid),
        project=project,
        name=name,
        state=state,
        config=orjson.loads(config),
        summary=orjson.loads(summary),
        tags=orjson.loads(tags),
        notes=notes,
        git=GitInfo(branch, commit, None if dirty is None else bool(dirty), remote),
        host=host,
        metadata=orjson.loads(metadata),
        exit_code=exit_code,
        created_at=created,
        updated_at=updated,
        heartbeat_at=heartbeat,
        finished_at=finished,
    )


def run_to_params(run: Run) -> tuple[Any, ...]:
    """Values for ``RUN_COLUMNS`` in order."""
    g = run.git
    return (
        str(run.id), run.project, run.name, run.state, orjson.dumps(run.config).decode(),
        orjson.dumps(run.summary).decode(), orjson.dumps(run.tags).decode(), run.notes,
        g.branch, g.commit, None if g.dirty is None else int(g.dirty), g.remote, run.host,
        orjson.dumps(run.metadata).decode(), run.exit_code, run.created_at, run.updated_at,
        run.heartbeat_at, run.finished_at,
    )  # fmt: skip


def field_expr(name: str) -> tuple[str, list[Any], bool]:
    """SQL expression for a filter/sort field: (sql, params, is_json_path)."""
    if name in COLUMNS:
        return name, [], False
    if name in GIT_COLUMNS:
        return GIT_COLUMNS[name], [], False
    head, _, rest = name.partition(".")
    parts = rest.split(".") if rest else []
    if head not in JSON_COLUMNS or not parts or not all(parts):
        raise InvalidQuery(
            f"unknown field {name!r}: use a run column, git.<key>, or config./summary./metadata.<path>"
        )
    path = "$" + "".join('."' + p.replace('"', '""') + '"' for p in parts)
    return f"json_extract({head}, ?)", [path], True


def _filter_sql(f: RunFilter) -> tuple[str, list[Any]]:
    if f.field == "tags":
        if f.op != "contains" or not isinstance(f.value, str):
            raise InvalidQuery("the tags field supports only 'contains' with a string")
        return "EXISTS (SELECT 1 FROM json_each(runs.tags) WHERE value = ?)", [f.value]
    expr, params, is_json = field_expr(f.field)
    v = f.value
    if f.op == "in":
        if not isinstance(v, (list, tuple)) or not v or not all(isinstance(x, _SCALAR) for x in v):
            raise InvalidQuery(f"filter {f.field} in: value must be a non-empty list of scalars")
        return f"{expr} IN ({','.join('?' * len(v))})", params + list(v)
    if not isinstance(v, _SCALAR):
        raise InvalidQuery(f"filter {f.field} {f.op}: value must be a scalar")
    if f.op == "contains":
        return f"instr(lower(CAST({expr} AS TEXT)), lower(?)) > 0", [*params, str(v)]
    if f.op in ("eq", "ne"):
        if v is None:
            return f"{expr} IS {'NOT ' if f.op == 'ne' else ''}NULL", params
        return f"{expr} {'IS' if f.op == 'eq' else 'IS NOT'} ?", [*params, v]
    ops = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}
    if f.op not in ops or v is None:
        raise InvalidQuery(f"unknown filter op {f.op!r} for {f.field}")
    sql = f"{expr} {ops[f.op]} ?"
    if is_json:
        kinds = "'text'" if isinstance(v, str) else "'integer','real','true','false'"
        jtype = expr.replace("json_extract", "json_type", 1)
        return f"({jtype} IN ({kinds}) AND {sql})", params + params + [v]
    return sql, [*params, v]


def where_clause(q: RunQuery) -> tuple[str, list[Any]]:
    """WHERE conditions of ``q`` (without the cursor)."""
    conds: list[str] = []
    params: list[Any] = []
    if q.project is not None:
        conds.append("project = ?")
        params.append(q.project)
    if q.states:
        conds.append(f"state IN ({','.join('?' * len(q.states))})")
        params += q.states
    for tag in q.tags or ():
        conds.append("EXISTS (SELECT 1 FROM json_each(runs.tags) WHERE value = ?)")
        params.append(tag)
    for f in q.filters:
        sql, p = _filter_sql(f)
        conds.append(sql)
        params += p
    if q.search:
        s = q.search.lower()
        conds.append(
            "(instr(lower(name), ?) > 0 OR instr(lower(notes), ?) > 0 OR EXISTS "
            "(SELECT 1 FROM json_each(runs.tags) WHERE instr(lower(value), ?) > 0))"
        )
        params += [s, s, s]
    return " AND ".join(conds) or "1", params


def page_sql(q: RunQuery) -> tuple[str, list[Any], str, list[Any]]:
    """(SELECT of one page + 1 row, its params, count SELECT, its params)."""
    if not 1 <= q.limit <= 10_000:
        raise InvalidQuery(f"limit must be in 1..10000, got {q.limit}")
    where, params = where_clause(q)
    desc = q.sort.startswith("-")
    key, kparams, _ = field_expr(q.sort.lstrip("-+"))
    direction, cmp = ("DESC", "<") if desc else ("ASC", ">")
    page_where, page_params = where, list(params)
    if q.cursor is not None:
        c = decode_cursor(q.cursor, q.sort)
        if len(c) != 3 or not isinstance(c[2], str):
            raise InvalidQuery("malformed cursor")
        is_null, value, last_id = c
        if is_null:
            page_where += f" AND ({key}) IS NULL AND id {cmp} ?"
            page_params += [*kparams, last_id]
        else:
            page_where += (
                f" AND (({key}) IS NULL OR ({key}) {cmp} ? OR (({key}) = ? AND id {cmp} ?))"
            )
            page_params += [*kparams, *kparams, value, *kparams, value, last_id]
    sql = (
        f"SELECT {RUN_COLUMNS}, {key} AS sort_key FROM runs WHERE {page_where} "
        f"ORDER BY ({key}) IS NULL, sort_key {direction}, id {direction} LIMIT ?"
    )
    params_out = [*kparams, *page_params, *kparams, q.limit + 1]
    return sql, params_out, f"SELECT count(*) FROM runs WHERE {where}", params
