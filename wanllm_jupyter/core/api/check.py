"""Validation of request bodies against their model, naming every bad field.

msgspec stops at the first error and words it its own way; the API answers with
every bad field and the reasons of :mod:`wanllm_jupyter.core.limits`, alike on
every backend. So each model field is read once into a :class:`FieldCheck`
(the JSON kind it must be, then the limits its ``Meta`` states, then its
``Rule``) and a body is held to those before msgspec builds the model.
"""

from __future__ import annotations

import functools
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, Union

import msgspec
from msgspec import Meta, Struct

from .. import limits as L
from .fields import Rule

S = TypeVar("S", bound=Struct)
Problem = Callable[[Any], "str | None"]

_NUMBER = (int, float)
_KINDS: dict[Any, tuple[str, Callable[[Any], bool]]] = {
    str: ("a string", lambda v: isinstance(v, str)),
    bool: ("a boolean", lambda v: isinstance(v, bool)),
    int: (
        "an integer",
        lambda v: type(v) is int or (isinstance(v, int) and not isinstance(v, bool)),
    ),
    float: (
        "a number",
        lambda v: type(v) is float or (isinstance(v, _NUMBER) and v is not True and v is not False),
    ),
    dict: ("an object", lambda v: isinstance(v, dict)),
}


class BodyErrors(ValueError):
    """A request body broke its model: ``errors`` as ``{"index", "field", "reason"}``."""

    def __init__(self, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.errors = errors


@dataclass(frozen=True, slots=True)
class FieldCheck:
    """What one field of a request model accepts."""

    kind: str  # for "must be <kind>"
    accepts: Callable[[Any], bool]
    problems: tuple[Problem, ...]  # limit checks, in order, once the kind is right
    model: type[Struct] | None = None  # a nested request model
    items: FieldCheck | None = None  # what each item of an array field accepts
    int_range: tuple[int, int] | None = None  # an int field whose one check is this range

    @property
    def wrong_kind(self) -> str:
        """The reason for a value of the wrong JSON kind."""
        return f"must be {self.kind}"

    def reason(self, value: Any) -> str | None:
        if not self.accepts(value):
            return self.wrong_kind
        for problem in self.problems:
            reason = problem(value)
            if reason is not None:
                return reason
        return None


def _any_of(tests: tuple[Callable[[Any], bool], ...]) -> Callable[[Any], bool]:
    def accepts(value: Any) -> bool:
        for test in tests:  # noqa: SIM110 (a loop: any() of a generator is slower)
            if test(value):
                return True
        return False

    return accepts


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _strip(tp: Any) -> tuple[Any, list[Any]]:
    """``tp`` without ``Annotated`` and ``| None``, and the metadata found on the way."""
    meta: list[Any] = []
    while True:
        if typing.get_origin(tp) is Annotated:
            meta += tp.__metadata__
            tp = tp.__origin__
        elif _is_union(tp) and type(None) in typing.get_args(tp):
            rest = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007
        else:
            return tp, meta


def _int_range(tp: Any, metas: list[Meta]) -> tuple[int, int] | None:
    """The [lo, hi] an int's ``Meta`` bounds it to (int64 where one side is open)."""
    if tp is not int or not any(m.ge is not None or m.le is not None for m in metas):
        return None
    lo = max((int(m.ge) for m in metas if m.ge is not None), default=L.INT64_MIN)
    hi = min((int(m.le) for m in metas if m.le is not None), default=L.INT64_MAX)
    return lo, hi


def _limits(tp: Any, meta: list[Any]) -> list[Problem]:
    """The limit checks of a str or int whose ``Meta`` bounds it."""
    metas = [m for m in meta if isinstance(m, Meta)]
    if tp is str and any(m.max_length is not None for m in metas):
        hi = min(m.max_length for m in metas if m.max_length is not None)
        empty = not any(m.min_length for m in metas)
        return [lambda v: L.text_problem(v, hi, allow_empty=empty)]
    bounds = _int_range(tp, metas)
    if bounds is not None:
        lo, top = bounds
        return [lambda v: None if lo <= v <= top else L.int_problem(v, lo, top)]
    if tp is float and any(m.ge is not None or m.le is not None for m in metas):
        low = max((m.ge for m in metas if m.ge is not None), default=-math.inf)
        high = min((m.le for m in metas if m.le is not None), default=math.inf)
        return [lambda v: None if low <= v <= high else f"out of range [{low:g}, {high:g}]: {v!r}"]
    return []


def field_check(annotation: Any) -> FieldCheck:
    """The :class:`FieldCheck` of a request field's type."""
    tp, meta = _strip(annotation)
    problems = _limits(tp, meta) + [m.problem for m in meta if isinstance(m, Rule)]
    named = next((m.kind for m in meta if isinstance(m, Rule) and m.kind), None)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        kind, accepts = "one of " + ", ".join(map(str, args)), lambda v: v in args
    elif origin is list:
        items = field_check(args[0])
        if _strip(args[0])[0] is str:
            kind, accepts = (
                "a list of strings",
                lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
            )
        else:
            kind, accepts = "an array", lambda v: isinstance(v, list)
        return FieldCheck(named or kind, accepts, tuple(problems), items=items)
    elif _is_union(tp):
        parts = [field_check(a) for a in args]
        kind = " or ".join(p.kind for p in parts)
        accepts = _any_of(tuple(p.accepts for p in parts))
    elif isinstance(tp, type) and issubclass(tp, Struct):
        return FieldCheck(named or "an object", lambda v: isinstance(v, dict), (), tp)
    else:
        kind, accepts = _KINDS[origin or tp]
    rules = any(isinstance(m, Rule) for m in meta)
    bounds = None if rules else _int_range(tp, [m for m in meta if isinstance(m, Meta)])
    return FieldCheck(named or kind, accepts, tuple(problems), int_range=bounds)


@functools.cache
def checks(model: type[Struct]) -> dict[str, FieldCheck]:
    """Every field of a request model by its JSON name."""
    hints = typing.get_type_hints(model, include_extras=True)
    return {f.encode_name: field_check(hints[f.name]) for f in msgspec.structs.fields(model)}


@functools.cache
def field_names(model: type[Struct]) -> frozenset[str]:
    """The JSON field names of a model."""
    return frozenset(f.encode_name for f in msgspec.structs.fields(model))


@functools.cache
def required_names(model: type[Struct]) -> frozenset[str]:
    """The JSON names of a model's fields without a default."""
    return frozenset(f.encode_name for f in msgspec.structs.fields(model) if f.required)


def body_errors(body: dict[str, Any], model: type[Struct], index: int = 0) -> list[dict[str, Any]]:
    """``{"index", "field", "reason"}`` of every field of ``body`` unknown to ``model``
    or breaking its check (null = absent); nested models are not entered."""
    spec = checks(model)
    errors = []
    for key, value in body.items():
        rule = spec.get(key)
        reason = "unknown field" if rule is None else None if value is None else rule.reason(value)
        if reason is not None:
            errors.append({"index": index, "field": key, "reason": reason})
    return errors


def split_error(error: msgspec.ValidationError | str) -> tuple[str, str]:
    """msgspec's validation message as (reason, path): ``"Expected `int` - at
    `$.a[0]`"`` -> ``("Expected `int`", "a[0]")``; the path is "" at the top."""
    reason, _, where = str(error).partition(" - at `$")
    return reason, where.rstrip("`").lstrip(".")


def check(body: dict[str, Any], model: type[S], what: str) -> S:
    """``body`` as ``model``; :class:`BodyErrors` naming every bad field (``what``
    names the body in the message, e.g. "run"), nested models after their parent."""
    errors = body_errors(body, model)
    if errors:
        raise BodyErrors(f"invalid {what}: {len(errors)} bad field(s)", errors)
    for key, rule in checks(model).items():
        if rule.model is not None and body.get(key) is not None:
            check(body[key], rule.model, f"{what} {key} info")
    try:
        return msgspec.convert(body, model)
    except msgspec.ValidationError as e:  # a limit the checks above did not state
        reason, where = split_error(e)
        field = where.split(".")[0].split("[")[0]
        raise BodyErrors(
            f"invalid {what}: 1 bad field(s)", [{"index": 0, "field": field, "reason": reason}]
        ) from None
