"""Run filters, search and order of ``GET runs`` (docs/api.md), evaluated locally.

The offline ``Api`` (runs kept in local spools) answers ``runs(filters=, order=,
search=)`` like the server: ``field<op>value`` with ops ``= != < <= > >= ~``
(``~``: case-insensitive substring), the value parsed as JSON when it can be;
fields are run columns, ``git.<key>``, ``tags`` (``~`` only: has the tag) or
dotted paths under ``config.``, ``summary.``, ``metadata.``. As on the server,
``< <= > >=`` match only values of the operand's kind (numbers or strings), a
missing value equals only ``null``, and sorting puts missing values last in both
directions, ties broken by id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from .errors import UsageError

OPS = {">=": "ge", "<=": "le", "!=": "ne", "=": "eq", "<": "lt", ">": "gt", "~": "contains"}
COLUMNS = frozenset(
    {
        "id",
        "project",
        "name",
        "state",
        "notes",
        "host",
        "exit_code",
        "created_at",
        "updated_at",
        "heartbeat_at",
        "finished_at",
    }
)
JSON_FIELDS = ("config", "summary", "metadata", "git")
_MISSING = object()
Run = dict[str, Any]


def split_filter(text: str) -> tuple[str, str, Any]:
    """``"config.lr>=0.01"`` → ``("config.lr", "ge", 0.01)`` without checking the field;
    UsageError naming ``text`` when it has no operator (the server shares this)."""
    at = min((i for i, c in enumerate(text) if c in "=!<>~"), default=-1)
    op = next((o for o in OPS if text.startswith(o, at)), None) if at > 0 else None
    if op is None:
        raise UsageError(
            f"filter {text!r}: expected <field><op><value> with op one of {' '.join(OPS)}"
        )
    raw = text[at + len(op) :]
    try:
        value: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = raw
    if isinstance(value, dict | list):
        value = raw
    return text[:at], OPS[op], value


def parse_filter(text: str) -> tuple[str, str, Any]:
    """:func:`split_filter`, then check the field exists; UsageError naming ``text``."""
    field, op, value = split_filter(text)
    _getter(field)  # unknown fields fail here, naming the filter
    if field == "tags" and (op != "contains" or not isinstance(value, str)):
        raise UsageError(f"filter {text!r}: the tags field supports only '~' with a tag")
    return field, op, value


def _getter(field: str) -> Callable[[Run], Any]:
    """A function reading ``field`` from a run dict (``_MISSING`` when absent)."""
    if field in COLUMNS or field == "tags":
        return lambda run: run.get(field)
    head, _, rest = field.partition(".")
    parts = rest.split(".") if rest else []
    if head not in JSON_FIELDS or not parts or not all(parts) or (head == "git" and len(parts) > 1):
        raise UsageError(
            f"unknown field {field!r}: use a run column, git.<key>, tags, or "
            "config./summary./metadata.<path>"
        )

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
    return {"lt": value < operand, "le": value <= operand, "gt": value > operand}.get(
        op, value >= operand
    )


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
    """The runs matching every filter and ``search``, sorted by ``order``, at most ``limit``."""
    tests = [_test(*parse_filter(f)) for f in filters]
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
    present, missing = [], []
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
