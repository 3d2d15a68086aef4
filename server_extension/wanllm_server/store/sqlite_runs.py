"""Runs on SQLite: row <-> :class:`Run` mapping, the run-list query builder and run CRUD.

Filter/sort fields: the columns in :data:`COLUMNS`, ``git.<branch|commit|
dirty|remote>``, and dotted JSON paths under ``config.``, ``summary.`` and
``metadata.``; each path part is a literal object key (``config.a"b`` is the key
``a"b``): a JSON path addresses keys SQLite can quote, a chain of ``json_each``
lookups the others (with ``"``, ``\\`` or control characters, which SQLite's
path syntax cannot express on every version). Ordering comparisons
(lt/le/gt/ge) on JSON paths only match values of the same JSON kind as the
operand (numbers compare numerically). Values are checked first
(:func:`.run_rules.check_filter`, :func:`.cursor.decode_page_key`).
Sorting puts missing values last in both directions; pagination is keyset on
``(value is null, value, id)`` through :mod:`.cursor`.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import orjson

from wanllm_jupyter.core.run_filters import COLUMNS, GIT_KEYS

from .base import (
    GitInfo,
    InvalidQuery,
    Run,
    RunCreate,
    RunFilter,
    RunMatch,
    RunNotFound,
    RunPage,
    RunQuery,
    RunUpdate,
    check_page_limit,
)
from .batches import now_us
from .cursor import decode_page_key, encode_cursor
from .run_rules import (
    apply_run_update,
    check_filter,
    check_run_update,
    field_kind_of,
    new_run,
    resume_run,
)

GIT_COLUMNS = {f"git.{k}": f"git_{k}" for k in GIT_KEYS}
RUN_COLUMNS = (
    "id, project, name, state, config, summary, tags, notes, git_branch, git_commit, git_dirty, "
    "git_remote, host, metadata, exit_code, created_at, updated_at, heartbeat_at, finished_at"
)


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
    sql, params = _json_lookup(name, "value")
    return sql, params, True


def _json_lookup(name: str, column: str) -> tuple[str, list[Any]]:
    """The ``value`` (as json_extract) or ``type`` (as json_type) at a JSON path field."""
    field_kind_of(name)  # unknown fields and unusable keys fail here
    head, _, rest = name.partition(".")
    parts = rest.split(".")
    if all(_PATH_SAFE.isdisjoint(p) and min(p) >= " " for p in parts):
        path = "$" + "".join(f'."{p}"' for p in parts)
        return f"json_{'extract' if column == 'value' else 'type'}(runs.{head}, ?)", [path]
    sql = f"runs.{head}"
    for _ in parts[:-1]:
        sql = f"(SELECT value FROM json_each({sql}) WHERE key = ? AND type = 'object')"
    return f"(SELECT {column} FROM json_each({sql}) WHERE key = ?)", parts


_PATH_SAFE = frozenset('"\\')  # escaped in stored JSON; so are control characters


def _filter_sql(f: RunFilter) -> tuple[str, list[Any]]:
    """SQL for ``f``; a negated filter is true wherever ``f`` is not (NULL included)."""
    sql, params = _word_sql(f.value) if f.op == "word" else _plain_filter_sql(f)
    return (f"NOT coalesce(({sql}), 0)", params) if f.negate else (sql, params)


def _word_sql(word: str) -> tuple[str, list[Any]]:
    """A search word: substring of name, notes or a tag, or a prefix of the id."""
    s = str(word).lower()
    return (
        "(instr(lower(name), ?) > 0 OR instr(lower(notes), ?) > 0 OR substr(id, 1, ?) = ? "
        "OR EXISTS (SELECT 1 FROM json_each(runs.tags) WHERE instr(lower(value), ?) > 0))",
        [s, s, len(s), s, s],
    )


def _match_sql(match: RunMatch) -> tuple[str, list[Any]]:
    """A parsed query: OR of AND-ed groups."""
    ors, params = [], []
    for group in match:
        ands = []
        for f in group:
            sql, p = _filter_sql(f)
            ands.append(sql)
            params += p
        ors.append("(" + " AND ".join(ands) + ")")
    return "(" + " OR ".join(ors) + ")", params


def _plain_filter_sql(f: RunFilter) -> tuple[str, list[Any]]:
    check_filter(f)
    if f.field == "tags":
        return "EXISTS (SELECT 1 FROM json_each(runs.tags) WHERE value = ?)", [f.value]
    expr, params, is_json = field_expr(f.field)
    v = f.value
    if f.op == "in":
        return f"{expr} IN ({','.join('?' * len(v))})", params + list(v)
    if f.op == "contains":
        text = f"CAST({expr} AS TEXT)"
        if is_json:  # JSON booleans read as 1/0: as text they are true/false, as elsewhere
            jtype, tparams = _json_lookup(f.field, "type")
            text = f"CASE {jtype} WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE {text} END"
            params = tparams + params
        return f"instr(lower({text}), lower(?)) > 0", [*params, str(v)]
    if f.op in ("eq", "ne"):
        if v is None:
            return f"{expr} IS {'NOT ' if f.op == 'ne' else ''}NULL", params
        return f"{expr} {'IS' if f.op == 'eq' else 'IS NOT'} ?", [*params, v]
    ops = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}
    if f.op not in ops:
        raise InvalidQuery(f"unknown filter op {f.op!r} for {f.field}")
    sql = f"{expr} {ops[f.op]} ?"
    if is_json:
        kinds = "'text'" if isinstance(v, str) else "'integer','real','true','false'"
        jtype, tparams = _json_lookup(f.field, "type")
        return f"({jtype} IN ({kinds}) AND {sql})", tparams + params + [v]
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
    for match in q.matches:
        if match:
            sql, p = _match_sql(match)
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
    check_page_limit(q.limit)
    where, params = where_clause(q)
    desc = q.sort.startswith("-")
    key, kparams, _ = field_expr(q.sort.lstrip("-+"))
    direction, cmp = ("DESC", "<") if desc else ("ASC", ">")
    page_where, page_params = where, list(params)
    if q.cursor is not None:
        is_null, value, last_id = decode_page_key(q.cursor, q.sort)
        if isinstance(value, dict | list):  # a JSON sort value as PostgreSQL keeps it
            value = orjson.dumps(value).decode()
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


# --------------------------------------------------------------------- run CRUD
def run_key(run_id: uuid.UUID | str) -> str:
    try:
        return str(run_id if isinstance(run_id, uuid.UUID) else uuid.UUID(str(run_id)))
    except ValueError:
        raise InvalidQuery(f"not a UUID: {str(run_id)[:64]!r}") from None


def require_run(c: sqlite3.Connection, key: str) -> None:
    if c.execute("SELECT 1 FROM runs WHERE id = ?", (key,)).fetchone() is None:
        raise RunNotFound(key)


def get_run(c: sqlite3.Connection, key: str) -> Run:
    row = c.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (key,)).fetchone()
    if row is None:
        raise RunNotFound(key)
    return run_from_row(row)


def save_run(c: sqlite3.Connection, run: Run) -> None:
    marks = ",".join("?" * 19)
    # An upsert, not INSERT OR REPLACE: REPLACE deletes the row first, which cascades
    # to the run's metrics.
    sets = ", ".join(f"{col} = excluded.{col}" for col in RUN_COLUMNS.split(", ")[1:])
    c.execute(
        f"INSERT INTO runs ({RUN_COLUMNS}) VALUES ({marks}) ON CONFLICT(id) DO UPDATE SET {sets}",
        run_to_params(run),
    )


def create_run(c: sqlite3.Connection, spec: RunCreate) -> tuple[Run, bool]:
    now = now_us()
    if spec.id is not None:
        key = run_key(spec.id)
        row = c.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (key,)).fetchone()
        if row is not None:
            run = run_from_row(row)
            resume_run(run, spec, now)
            save_run(c, run)
            return run, True
    run = new_run(spec, uuid.UUID(run_key(spec.id)) if spec.id is not None else None, now)
    save_run(c, run)
    return run, False


def update_run(c: sqlite3.Connection, key: str, u: RunUpdate) -> Run:
    check_run_update(u)
    run = get_run(c, key)
    apply_run_update(run, u, now_us())
    save_run(c, run)
    return run


def delete_run(c: sqlite3.Connection, key: str) -> None:
    if c.execute("DELETE FROM runs WHERE id = ?", (key,)).rowcount == 0:
        raise RunNotFound(key)


def list_runs(c: sqlite3.Connection, q: RunQuery) -> RunPage:
    sql, params, count_sql, count_params = page_sql(q)
    rows = c.execute(sql, params).fetchall()
    total = c.execute(count_sql, count_params).fetchone()[0]
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    cursor = None
    if more:
        last = rows[-1]
        cursor = encode_cursor(q.sort, [last[-1] is None, last[-1], last[0]])
    return RunPage([run_from_row(r) for r in rows], cursor, total)
