"""The JSON Schemas of the models, as OpenAPI 3.1 components."""

from __future__ import annotations

import inspect
from typing import Any

import msgspec

from . import MODELS

REF = "#/components/schemas/{name}"

# the unions of WebSocket messages get a name of their own (msgspec inlines them)
_UNIONS = {"ClientMessage": MODELS[-2], "ServerMessage": MODELS[-1]}


def components() -> dict[str, Any]:
    """Every model's schema by name (docstrings as descriptions)."""
    named = list(_UNIONS)
    refs, schemas = msgspec.json.schema_components(MODELS, ref_template=REF)
    for name, ref in zip(named, refs[-len(named) :], strict=True):
        schemas[name] = ref
    for schema in schemas.values():
        if "description" in schema:
            schema["description"] = inspect.cleandoc(schema["description"])
    return dict(sorted(schemas.items()))
