"""Field types of the API models: JSON shapes plus the input rules of
:mod:`wanllm_jupyter.core.limits`.

A request field's limits are msgspec ``Meta`` constraints, so the schema states
them; :mod:`.check` turns them into the reasons every backend answers with
(text: :func:`~wanllm_jupyter.core.limits.text_problem`, which also refuses NUL
and lone surrogates; integers: ``int_problem``). A ``Rule`` adds a check that a
constraint cannot state (tags, JSON documents, times).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from msgspec import Meta

from .. import limits as L


@dataclass(frozen=True, slots=True)
class Rule:
    """Why a value of the right JSON type is refused (None = accepted); ``kind``
    names the type in "must be <kind>" when the generic name would not do."""

    problem: Callable[[Any], str | None]
    kind: str | None = None


def _tags_problem(tags: list[str]) -> str | None:
    if len(tags) > L.MAX_TAGS:
        return f"more than {L.MAX_TAGS} tags ({len(tags)})"
    for i, tag in enumerate(tags):
        bad = L.text_problem(tag, L.MAX_TAG_LENGTH)
        if bad is not None:
            return f"tag {i}: {bad}"
    return None


def _time_problem(value: Any) -> str | None:
    try:
        L.time_us(value)
    except ValueError as e:
        return str(e)
    return None


Tags = Annotated[
    list[Annotated[str, Meta(min_length=1, max_length=L.MAX_TAG_LENGTH)]],
    Meta(max_length=L.MAX_TAGS),
    Rule(_tags_problem),
]
JsonDoc = Annotated[
    dict[str, Any],
    Meta(
        description=f"keys 1..{L.MAX_CONFIG_KEY_LENGTH} characters, no NUL in keys or strings, "
        f"int64 integers, nested at most {L.MAX_JSON_DEPTH} levels"
    ),
    Rule(L.json_problem),
]
EPOCH_SECONDS = Annotated[float, Meta(ge=L.MIN_TIME_US / 1e6, le=9e12)]
TimeIn = Annotated[
    str | float,
    Meta(description="ISO 8601 (naive = UTC) or epoch seconds"),
    Rule(_time_problem, "a time (ISO 8601 or epoch seconds)"),
]
Int64 = Annotated[int, Meta(ge=L.INT64_MIN, le=L.INT64_MAX)]
Int32 = Annotated[int, Meta(ge=L.INT32_MIN, le=L.INT32_MAX)]
NameIndex = Annotated[int, Meta(ge=0, le=L.INT32_MAX)]
ProjectName = Annotated[str, Meta(min_length=1, max_length=L.MAX_PROJECT_LENGTH)]
RunName = Annotated[str, Meta(min_length=1, max_length=L.MAX_RUN_NAME_LENGTH)]
Notes = Annotated[str, Meta(max_length=L.MAX_NOTES_LENGTH)]
HostName = Annotated[str, Meta(max_length=L.MAX_HOST_LENGTH)]
Label = Annotated[str, Meta(min_length=1, max_length=L.MAX_HOST_LENGTH)]
GitText = Annotated[str, Meta(max_length=L.MAX_GIT_FIELD_LENGTH)]
MetricName = Annotated[str, Meta(min_length=1, max_length=L.MAX_METRIC_NAME_LENGTH)]
SystemType = Annotated[str, Meta(min_length=1, max_length=L.MAX_SYSTEM_TYPE_LENGTH)]
BatchId = Annotated[str, Meta(min_length=1, max_length=L.MAX_BATCH_ID_LENGTH)]
QueryText = Annotated[str, Meta(max_length=L.MAX_FILTER_TEXT_LENGTH)]
UuidText = Annotated[str, Meta(extra_json_schema={"format": "uuid"})]
IsoTime = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
NonFinite = Literal["NaN", "Infinity", "-Infinity"]
WireNumber = float | NonFinite
"""A number on the JSON wire: NaN/±Inf as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``."""
RunState = Literal["running", "finished", "failed", "crashed"]
