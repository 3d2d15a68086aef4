"""Run filters, search and order of ``GET runs`` (docs/api.md): parsed and typed here for
the server, and evaluated locally for the offline ``Api`` (runs kept in local spools).

A filter is ``field<op>value`` with ops ``= != < <= > >= ~`` (``~``:
case-insensitive substring). Fields are run columns, ``git.<branch|commit|dirty|
remote>``, ``tags`` (``~`` only: has the tag) or dotted paths under ``config.``,
``summary.``, ``metadata.`` (each part is a literal key: ``config.a"b`` is the key
``a"b``; a part never indexes an array). The literal is typed by its field
(:func:`parse_filter`): a UUID for ``id``, an int32 for ``exit_code``, a time
(ISO 8601 or epoch seconds, held as µs) for ``*_at``, a boolean for ``git.dirty``,
the literal text for text columns, JSON (int64 numbers, strings) for JSON paths;
``null`` only with ``=``/``!=``; ``~`` takes the literal's text and is refused on
times and booleans. ``< <= > >=`` match only values of the operand's kind (numbers
or strings), a missing value equals only ``null``, and sorting puts missing values
last in both directions, ties broken by id.

The same filters make up the *query language* the sidebar, the run table, ``wanllm
runs``, ``Api().runs(filters=...)`` and the REST ``filter`` argument share
(:func:`parse_query`): terms joined by ``AND`` (``&&``, ``&`` or a space) and ``OR``
(``||``, ``|``), AND binding tighter; a leading ``-`` negates a term. A term is a
filter, with ``:`` as one more op (``~`` for every field but ``tag``), the alias
``tag`` (``tag:x``, ``tag=x``, ``tag~x``: has the tag ``x``; ``tag!=x``: has not), or a
bare word: a case-insensitive substring of the name, notes or a tag, or a prefix of
the id. A ``"`` opening a token or a value quotes up to the next ``"`` (spaces kept,
the value taken as text); anywhere else it is a literal character.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import orjson

from .errors import UsageError
from .limits import (
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    MAX_CONFIG_KEY_LENGTH,
    MAX_FILTER_TEXT_LENGTH,
    MAX_JSON_DEPTH,
    MAX_TAG_LENGTH,
    MAX_TIME_US,
    MIN_TIME_US,
    text_problem,
    time_us,
)

OPS = {
    ":": "colon",
    ">=": "ge",
    "<=": "le",
    "!=": "ne",
    "=": "eq",
    "<": "lt",
    ">": "gt",
    "~": "contains",
}
ORDERED = frozenset({"lt", "le", "gt", "ge"})
TIME_COLUMNS = frozenset({"created_at", "updated_at", "heartbeat_at", "finished_at"})
TEXT_COLUMNS = frozenset({"project", "name", "state", "notes", "host"})
COLUMNS = frozenset({"id", "exit_code", *TIME_COLUMNS, *TEXT_COLUMNS})
GIT_KEYS = ("branch", "commit", "dirty", "remote")
JSON_FIELDS = ("config", "summary", "metadata")
_OP_CHARS = ":=!<>~"
_MISSING = object()
Run = dict[str, Any]


def _split(text: str) -> tuple[str, str, str]:
    at = min((i for i, c in enumerate(text) if c in _OP_CHARS), default=-1)
    op = next((o for o in OPS if text.startswith(o, at)), None) if at > 0 else None
    if op is None:
        raise UsageError(
            f"filter {text!r}: expected <field><op><value> with op one of {' '.join(OPS)}"
        )
    return text[:at], OPS[op], text[at + len(op) :]


def _json_literal(raw: str) -> Any:
    """The literal parsed as JSON when it is a JSON scalar, else its text."""
    try:
        value: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    return raw if isinstance(value, dict | list) else value


def field_kind(field: str) -> str:
    """``uuid``, ``int32``, ``time``, ``text``, ``bool``, ``json`` or ``tags``;
    UsageError for an unknown field or a JSON path with an unusable key."""
    if field == "tags":
        return "tags"
    if field in COLUMNS:
        return "uuid" if field == "id" else "int32" if field == "exit_code" else (
            "time" if field in TIME_COLUMNS else "text"
        )  # fmt: skip
    head, _, rest = field.partition(".")
    if head == "git" and rest in GIT_KEYS:
        return "bool" if rest == "dirty" else "text"
    parts = rest.split(".") if rest else []
    if head not in JSON_FIELDS or not parts or not all(parts):
        raise UsageError(
            f"unknown field {field[:300]!r}: use a run column, git.<{'|'.join(GIT_KEYS)}>, "
            "tags, or config./summary./metadata.<path>"
        )
    if len(parts) > MAX_JSON_DEPTH:
        raise UsageError(f"field {field[:300]!r}: deeper than {MAX_JSON_DEPTH} keys")
    for part in parts:
        bad = text_problem(part, MAX_CONFIG_KEY_LENGTH)
        if bad is not None:
            raise UsageError(f"field {field[:300]!r}: key {part[:64]!r} {bad}")
    return "json"


def value_problem(kind: str, op: str, value: Any) -> str | None:
    """Why ``value`` (in its stored form: times as int µs) cannot be compared with
    ``op`` to a field of ``kind``, or None."""
    if kind == "tags":
        if op != "contains" or not isinstance(value, str):
            return "the tags field supports only '~' with a tag"
        return _text_problem(value, MAX_TAG_LENGTH)
    if value is None:
        return None if op in ("eq", "ne") else "null is only allowed with = or !="
    if op == "contains":
        if kind in ("time", "bool"):
            return f"~ is not supported on {'times' if kind == 'time' else 'booleans'}"
        return _text_problem(value, MAX_FILTER_TEXT_LENGTH)
    if kind == "text":
        return _text_problem(value, MAX_FILTER_TEXT_LENGTH)
    if kind == "uuid":
        if not isinstance(value, str):
            return "expected a run id (UUID)"
        try:
            uuid.UUID(value)
        except ValueError:
            return f"not a UUID: {value[:64]!r}"
        return None
    if kind == "int32":
        return _int_problem(value, INT32_MIN, INT32_MAX, "an integer")
    if kind == "time":
        return _int_problem(value, MIN_TIME_US, MAX_TIME_US, "a time")
    if kind == "bool":
        return None if isinstance(value, bool) else "expected true or false"
    if isinstance(value, str):
        return _text_problem(value, MAX_FILTER_TEXT_LENGTH)
    if isinstance(value, bool | float):
        return None
    return _int_problem(value, INT64_MIN, INT64_MAX, "a JSON scalar")


def _text_problem(value: Any, max_length: int) -> str | None:
    bad = text_problem(value, max_length, allow_empty=True)
    return None if bad is None else f"text {bad}"


def _int_problem(value: Any, lo: int, hi: int, what: str) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"expected {what}, got {type(value).__name__}"
    return None if lo <= value <= hi else f"{what} out of range [{lo}, {hi}]: {value}"


def parse_filter(text: str, quoted: bool = False) -> tuple[str, str, Any]:
    """A filter as ``(field, op, value)`` with the value in its stored form (times
    in µs, ids canonical); UsageError naming ``text`` when anything is wrong.
    ``quoted``: the value was quoted, so it is text (never JSON)."""
    return parse_term(text, quoted)[:3]


def parse_term(text: str, quoted: bool = False) -> Term:
    """One filter term of the query language (``tag`` and ``:`` resolved)."""
    field, op, raw = _split(text)
    negate = False
    if field == "tag":
        if op not in ("colon", "eq", "contains", "ne"):
            raise UsageError(f"filter {text[:300]!r}: tag takes ':', '=', '~' or '!=' and a tag")
        field, negate, op = "tags", op == "ne", "contains"
    elif op == "colon":
        op = "contains"
    try:
        kind = field_kind(field)
    except UsageError as e:
        raise UsageError(f"filter {text[:300]!r}: {e}") from None
    parsed = raw if quoted else _json_literal(raw)
    try:
        value = _typed(kind, op, raw, parsed)
    except ValueError as e:
        raise UsageError(f"filter {text[:300]!r}: {e}") from None
    bad = value_problem(kind, op, value)
    if bad is not None:
        raise UsageError(f"filter {text[:300]!r}: {bad}")
    return Term(field, op, value, negate)


class Term(NamedTuple):
    """A filter ``field op value`` (stored form), or a bare word (``field`` "",
    ``op`` "word", ``value`` the word); ``negate`` inverts it."""

    field: str
    op: str
    value: Any
    negate: bool = False


Query = tuple[tuple[Term, ...], ...]  # OR of AND groups
_OR = frozenset({"OR", "||", "|"})
_AND = frozenset({"AND", "&&", "&"})


def _tokens(text: str) -> list[tuple[str, int]]:
    """Whitespace-separated tokens, each with 0 (no quote), 1 (a quoted value) or 2
    (quoted from its start: a search word)."""
    out: list[tuple[str, int]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        token, quoted = "", 0
        while i < n and not text[i].isspace():
            opens = text[i] == '"' and (token in ("", "-") or token[-1] in _OP_CHARS)
            if opens:
                end = text.find('"', i + 1)
                if end < 0:
                    raise UsageError(f"unterminated quote in {text[i : i + 300]!r}")
                quoted = max(quoted, 2 if token in ("", "-") else 1)
                token, i = token + text[i + 1 : end], end + 1
            else:
                token, i = token + text[i], i + 1
        out.append((token, quoted))
    return out


def parse_query(text: str) -> Query:
    """A query of the language above as OR-groups of AND-ed terms (``()``: every
    run); UsageError naming the offending piece."""
    groups: list[list[Term]] = [[]]
    pending: str | None = None
    for token, quoted in _tokens(text):
        word = "" if quoted else token.upper()
        if word in _OR or word in _AND:
            if not groups[-1] or pending:
                raise UsageError(f"{token!r} needs a term before it")
            pending = token
            if word in _OR:
                groups.append([])
            continue
        groups[-1].append(_query_term(token, quoted))
        pending = None
    if pending:
        raise UsageError(f"{pending!r} needs a term after it")
    return () if groups == [[]] else tuple(tuple(g) for g in groups)


def _query_term(token: str, quoted: int) -> Term:
    negate = token.startswith("-") and len(token) > 1
    body = token[1:] if negate else token
    if quoted == 2 or not any(c in _OP_CHARS for c in body[1:]):
        bad = text_problem(body, MAX_FILTER_TEXT_LENGTH)
        if bad is not None:
            raise UsageError(f"search word {body[:300]!r}: {bad}")
        return Term("", "word", body.lower(), negate)
    term = parse_term(body, quoted == 1)
    return term._replace(negate=term.negate != negate)


def _typed(kind: str, op: str, raw: str, parsed: Any) -> Any:
    """The literal as the value compared with a field of ``kind``."""
    if parsed is None and op != "contains":
        return None
    if op == "contains" or kind in ("text", "tags"):
        return parsed if isinstance(parsed, str) else raw
    if kind == "uuid" and isinstance(parsed, str):
        try:
            return str(uuid.UUID(parsed))
        except ValueError:
            return parsed  # value_problem names it
    if kind == "time":
        return time_us(parsed)
    if kind == "int32" and isinstance(parsed, float) and parsed.is_integer():
        return int(parsed)
    return parsed


def _getter(field: str) -> Callable[[Run], Any]:
    """A function reading ``field`` from a run dict (``_MISSING`` when absent)."""
    kind = field_kind(field)
    if field in TIME_COLUMNS:
        return lambda run: None if run.get(field) is None else time_us(run[field])
    if field in COLUMNS or kind == "tags":
        return lambda run: run.get(field)
    head, _, rest = field.partition(".")
    parts = rest.split(".")

    def get(run: Run) -> Any:
        value: Any = run.get(head)
        for part in parts:
            if not isinstance(value, dict) or part not in value:
                return _MISSING
            value = value[part]
        return value

    return get


def _kind(value: Any) -> str | None:
    if isinstance(value, bool | int | float):
        return "number"
    return "string" if isinstance(value, str) else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _matches(value: Any, op: str, operand: Any) -> bool:
    if value is _MISSING:
        value = None
    if op == "eq":
        return value == operand and _kind(value) == _kind(operand)
    if op == "ne":
        return not (value == operand and _kind(value) == _kind(operand))
    if op == "contains":
        return value is not None and _text(operand).lower() in _text(value).lower()
    if value is None or _kind(value) is None or _kind(value) != _kind(operand):
        return False
    if op == "lt":
        return bool(value < operand)
    if op == "le":
        return bool(value <= operand)
    if op == "gt":
        return bool(value > operand)
    return bool(value >= operand)


def _word(run: Run, word: str) -> bool:
    return (
        word in (run.get("name") or "").lower()
        or word in (run.get("notes") or "").lower()
        or any(word in t.lower() for t in run.get("tags") or ())
        or str(run.get("id") or "").lower().startswith(word)
    )


def _term_test(term: Term) -> Callable[[Run], bool]:
    if term.op == "word":
        test: Callable[[Run], bool] = lambda run: _word(run, term.value)  # noqa: E731
    else:
        test = _test(term.field, term.op, term.value)
    return (lambda run: not test(run)) if term.negate else test


def query_test(query: Query) -> Callable[[Run], bool]:
    """A predicate on run dicts for a parsed query."""
    groups = [[_term_test(t) for t in g] for g in query]
    if not groups:
        return lambda run: True
    return lambda run: any(all(t(run) for t in g) for g in groups)


def _test(field: str, op: str, operand: Any) -> Callable[[Run], bool]:
    """A predicate on run dicts for one parsed filter."""
    if field == "tags":
        return lambda run: operand in (run.get("tags") or ())
    get = _getter(field)
    return lambda run: _matches(get(run), op, operand)


def select_runs(
    runs: Iterable[Run],
    filters: list[str],
    search: str | None = None,
    order: str = "-created_at",
    limit: int | None = None,
) -> list[Run]:
    """The runs matching every query in ``filters`` and ``search``, sorted by
    ``order``, at most ``limit``."""
    tests = [query_test(parse_query(f)) for f in filters]
    out = [r for r in runs if all(test(r) for test in tests)]
    if search:
        s = search.lower()
        out = [
            r
            for r in out
            if s in (r.get("name") or "").lower()
            or s in (r.get("notes") or "").lower()
            or any(s in t.lower() for t in r.get("tags") or ())
        ]
    out = _sorted(out, order)
    return out[:limit] if limit else out


def _sorted(runs: list[Run], order: str) -> list[Run]:
    desc = order.startswith("-")
    get = _getter(order.lstrip("-+"))
    present: list[tuple[Any, Run]] = []
    missing: list[tuple[Any, Run]] = []
    for r in runs:
        v = get(r)
        (missing if v is None or v is _MISSING else present).append((v, r))
    present.sort(
        key=lambda vr: (_kind(vr[0]) != "number", _sort_value(vr[0]), vr[1]["id"]), reverse=desc
    )
    missing.sort(key=lambda vr: vr[1]["id"], reverse=desc)
    return [r for _, r in present + missing]


def _sort_value(value: Any) -> Any:
    """Numbers sort numerically, everything else by its text."""
    return (float(value), "") if _kind(value) == "number" else (0.0, _text(value))
