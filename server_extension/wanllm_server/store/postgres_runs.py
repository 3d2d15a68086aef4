"""Runs on PostgreSQL: record -> :class:`Run` mapping and the run-list query builder.

Same semantics as :mod:`.sqlite_runs`: filter/sort fields are the columns in
:data:`.sqlite_runs.COLUMNS`, ``git.<key>`` and dotted JSON paths under
``config.``/``summary.``/``metadata.`` (``config.optimizer.lr`` ->
``config -> 'optimizer' -> 'lr'``: each part a literal object key, never an
array index; JSON null counts as missing). Values are checked first
(:func:`.run_rules.check_filter`, :func:`.cursor.decode_page_key`). Ordering
comparisons on JSON paths only match values of the operand's kind (numbers
compare numerically, booleans as 0/1). Sorting puts missing values last in
both directions; keyset pagination on ``(value is null, value, id)``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import asyncpg

from wanllm_jupyter.core.run_filters import COLUMNS

from .base import GitInfo, InvalidQuery, Run, RunFilter, RunMatch, RunQuery, check_page_limit
from .cursor import decode_page_key
from .run_rules import check_filter, field_kind_of
from .sqlite_runs import GIT_COLUMNS

RUN_COLUMNS = (
    "id, project, name, state, config, summary, tags, notes, git_branch, git_commit, git_dirty, "
    "git_remote, host, metadata, exit_code, created_at, updated_at, heartbeat_at, finished_at"
)
_CMP = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def run_from_record(r: asyncpg.Record) -> Run:
    """A ``runs`` row (timestamps already decoded to µs) as a :class:`Run`."""
    return Run(
        id=r["id"],
        project=r["project"],
        name=r["name"],
        state=r["state"],
        config=r["config"],
        summary=r["summary"],
        tags=list(r["tags"]),
        notes=r["notes"],
        git=GitInfo(r["git_branch"], r["git_commit"], r["git_dirty"], r["git_remote"]),
        host=r["host"],
        metadata=r["metadata"],
        exit_code=r["exit_code"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        heartbeat_at=r["heartbeat_at"],
        finished_at=r["finished_at"],
    )


class _Params:
    """Collects positional parameters and hands out ``$n`` placeholders."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any, cast: str = "") -> str:
        self.values.append(value)
        return f"${len(self.values)}{cast}"


def _field(name: str, p: _Params) -> tuple[str, bool]:
    """SQL expression for a filter/sort field and whether it is a JSON path."""
    if name in COLUMNS:
        return name, False
    if name in GIT_COLUMNS:
        return GIT_COLUMNS[name], False
    field_kind_of(name)  # unknown fields and unusable keys fail here
    head, _, rest = name.partition(".")
    path = "".join(f" -> {p.add(part, '::text')}" for part in rest.split("."))
    return f"NULLIF({head}{path}, 'null'::jsonb)", True


def _json_ordered(expr: str, op: str, v: Any, p: _Params) -> str:
    """``expr op v`` for a JSON path, matching only values of v's kind."""
    if isinstance(v, str):
        return (
            f"(jsonb_typeof({expr}) = 'string' AND ({expr} #>> '{{}}') COLLATE \"C\" "
            f"{op} {p.add(v, '::text')})"
        )
    num = (
        f"CASE jsonb_typeof({expr}) WHEN 'number' THEN ({expr})::numeric "
        f"WHEN 'boolean' THEN ({expr})::boolean::int END"
    )
    # the shortest repr, as JSON stores it (0.4, not the binary float's 0.4000000000000000222)
    return (
        f"({num} {op} {p.add(Decimal(repr(v)) if isinstance(v, float) else int(v), '::numeric')})"
    )


def _filter_sql(f: RunFilter, p: _Params) -> str:
    """SQL for ``f``; a negated filter is true wherever ``f`` is not (NULL included)."""
    sql = _word_sql(str(f.value).lower(), p) if f.op == "word" else _plain_filter_sql(f, p)
    return f"NOT coalesce(({sql}), FALSE)" if f.negate else sql


def _word_sql(word: str, p: _Params) -> str:
    """A search word: substring of name, notes or a tag, or a prefix of the id."""
    s = p.add(word, "::text")
    return (
        f"(strpos(lower(name), {s}) > 0 OR strpos(lower(notes), {s}) > 0 OR "
        f"left(id::text, length({s})) = {s} OR EXISTS "
        f"(SELECT 1 FROM unnest(tags) t WHERE strpos(lower(t), {s}) > 0))"
    )


def _match_sql(match: RunMatch, p: _Params) -> str:
    """A parsed query: OR of AND-ed groups."""
    groups = ["(" + " AND ".join(_filter_sql(f, p) for f in g) + ")" for g in match]
    return "(" + " OR ".join(groups) + ")"


def _plain_filter_sql(f: RunFilter, p: _Params) -> str:
    check_filter(f)
    if f.field == "tags":
        return f"tags @> ARRAY[{p.add(f.value, '::text')}]"
    v = f.value
    expr, is_json = _field(f.field, p)
    if f.op == "contains":
        text = f"({expr} #>> '{{}}')" if is_json else f"({expr})::text"
        return f"strpos(lower({text}), lower({p.add(str(v), '::text')})) > 0"
    if f.op == "in":
        if is_json:
            return f"{expr} = ANY({p.add(list(v), '::jsonb[]')})"
        return f"{expr} = ANY({p.add(list(v))})"
    if f.op in ("eq", "ne"):
        if v is None:
            return f"{expr} IS {'NOT ' if f.op == 'ne' else ''}NULL"
        rhs = p.add(v, "::jsonb") if is_json else p.add(v)
        return f"{expr} IS {'NOT ' if f.op == 'eq' else ''}DISTINCT FROM {rhs}"
    if f.op not in _CMP:
        raise InvalidQuery(f"unknown filter op {f.op!r} for {f.field}")
    if is_json:
        return _json_ordered(expr, _CMP[f.op], v, p)
    return f"{expr} {_CMP[f.op]} {p.add(v)}"


def _where(q: RunQuery, p: _Params) -> str:
    conds: list[str] = []
    if q.project is not None:
        conds.append(f"project = {p.add(q.project, '::text')}")
    if q.states:
        conds.append(f"state = ANY({p.add(list(q.states), '::text[]')})")
    if q.tags:
        conds.append(f"tags @> {p.add(list(q.tags), '::text[]')}")
    conds += [_filter_sql(f, p) for f in q.filters]
    conds += [_match_sql(m, p) for m in q.matches if m]
    if q.search:
        s = p.add(q.search.lower(), "::text")
        conds.append(
            f"(strpos(lower(name), {s}) > 0 OR strpos(lower(notes), {s}) > 0 OR EXISTS "
            f"(SELECT 1 FROM unnest(tags) t WHERE strpos(lower(t), {s}) > 0))"
        )
    return " AND ".join(conds) or "TRUE"


def count_sql(q: RunQuery) -> tuple[str, list[Any]]:
    p = _Params()
    return f"SELECT count(*) FROM runs WHERE {_where(q, p)}", p.values


def page_sql(q: RunQuery) -> tuple[str, list[Any]]:
    """SELECT of one page plus one row (to know whether there is a next page).

    Each row carries ``sort_key`` (jsonb for JSON paths) for the next cursor.
    """
    check_page_limit(q.limit)
    p = _Params()
    where = _where(q, p)
    desc = q.sort.startswith("-")
    key, is_json = _field(q.sort.lstrip("-+"), p)
    direction, cmp = ("DESC", "<") if desc else ("ASC", ">")
    if q.cursor is not None:
        is_null, value, last_id = decode_page_key(q.cursor, q.sort)
        rid = p.add(last_id, "::uuid")
        if is_null:
            where += f" AND ({key}) IS NULL AND id {cmp} {rid}"
        else:
            val = p.add(value, "::jsonb") if is_json else p.add(value)
            where += (
                f" AND (({key}) IS NULL OR ({key}) {cmp} {val}"
                f" OR (({key}) = {val} AND id {cmp} {rid}))"
            )
    sql = (
        f"SELECT {RUN_COLUMNS}, {key} AS sort_key FROM runs WHERE {where} "
        f"ORDER BY ({key}) IS NULL, sort_key {direction}, id {direction} LIMIT {p.add(q.limit + 1)}"
    )
    return sql, p.values
