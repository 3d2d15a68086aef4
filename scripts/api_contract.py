"""Generate the API contract's derived files from the models (wanllm_jupyter.core.api).

    python scripts/api_contract.py          # rewrite them
    python scripts/api_contract.py --check  # exit 1 naming each file that is out of date

From the served OpenAPI document (``wanllm_server.openapi.document``), whose
schemas msgspec generates from the models:

- the "Models" section of ``docs/api.md`` (between the ``models`` markers): one
  table of fields per model;
- ``js/shared/api-types.ts``: TypeScript types by openapi-typescript (an npm
  devDependency), which ``js/shared/types.ts`` aliases for the browser code.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "api.md"
TYPES = ROOT / "js" / "shared" / "api-types.ts"
BEGIN = "<!-- models: generated from wanllm_jupyter/core/api by scripts/api_contract.py -->"
END = "<!-- end of models -->"
TS_FLAGS = ("--empty-objects-unknown", "--default-non-nullable", "false")


def openapi() -> dict[str, Any]:
    from wanllm_server.openapi import document

    return document()


def type_text(schema: dict[str, Any]) -> str:
    """A property's type in words: ``string (1–128 characters)``, ``Run or null``..."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[`{name}`](#{name.lower()})"
    if "anyOf" in schema:
        return " or ".join(type_text(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " \\| ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type", "any")
    limits = []
    if "format" in schema:
        limits.append(schema["format"])
    if "minLength" in schema or "maxLength" in schema:
        limits.append(f"{schema.get('minLength', 0)}–{schema.get('maxLength', '∞')} characters")
    if "minimum" in schema or "maximum" in schema:
        limits.append(f"[{schema.get('minimum', '−∞')}, {schema.get('maximum', '∞')}]")
    if "maxItems" in schema and "prefixItems" not in schema:
        limits.append(f"at most {schema['maxItems']} items")
    if "prefixItems" in schema:
        return "[" + ", ".join(type_text(s) for s in schema["prefixItems"]) + "]"
    if kind == "array":
        item = type_text(schema["items"]) if "items" in schema else "any value"
        kind = f"array of ({item})" if " or " in item or "|" in item else f"array of {item}"
    elif kind == "object" and "additionalProperties" in schema:
        kind = f"object of {type_text(schema['additionalProperties'])}"
    return kind + (f" ({', '.join(limits)})" if limits else "")


def _notes(schema: dict[str, Any]) -> str:
    parts = [s.get("description", "") for s in [schema, *schema.get("anyOf", [])]]
    text = " ".join(p for p in parts if p).replace("\n", " ").replace("``", "`")
    return text.replace("|", "\\|")


def markdown(doc: dict[str, Any]) -> str:
    """The models section: a field table per object model, a line per union."""
    out = [BEGIN, "", "## Models", ""]
    out.append("Every body and WebSocket message, as the served `openapi.json` states it.")
    out.append("A field marked optional may be left out or sent as null.")
    for name, schema in doc["components"]["schemas"].items():
        out += ["", f"### {name}", ""]
        if "description" in schema:
            out += [schema["description"].replace("\n", " ").replace("``", "`"), ""]
        if "properties" not in schema:
            out.append(f"One of: {type_text(schema)}.")
            continue
        out += ["| field | type | | notes |", "|---|---|---|---|"]
        required = set(schema.get("required", []))
        for field, prop in schema["properties"].items():
            need = "required" if field in required else "optional"
            if need == "optional" and "anyOf" in prop:  # optional already says "or null"
                prop = {**prop, "anyOf": [s for s in prop["anyOf"] if s != {"type": "null"}]}
            out.append(f"| `{field}` | {type_text(prop)} | {need} | {_notes(prop)} |")
    return "\n".join([*out, "", END])


def docs_with_models(text: str, section: str) -> str:
    """``docs/api.md`` with its models section replaced (appended when missing)."""
    if BEGIN not in text:
        return text.rstrip("\n") + "\n\n" + section + "\n"
    head, rest = text.split(BEGIN, 1)
    return head + section + rest.split(END, 1)[1]


def typescript(doc: dict[str, Any]) -> str:
    """openapi-typescript's output for ``doc``."""
    cli = ROOT / "node_modules" / ".bin" / "openapi-typescript"
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "openapi.json", Path(tmp) / "api-types.ts"
        src.write_text(json.dumps(doc))
        subprocess.run([str(cli), str(src), "-o", str(dst), *TS_FLAGS], check=True,
                       capture_output=True)  # fmt: skip
        return dst.read_text()


def generated() -> dict[Path, str]:
    """Each derived file's content as the models say it should be."""
    doc = openapi()
    return {
        DOCS: docs_with_models(DOCS.read_text(), markdown(doc)),
        TYPES: typescript(doc),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="only say which files are stale")
    args = ap.parse_args()
    stale = []
    for path, text in generated().items():
        if (path.read_text() if path.exists() else None) != text:
            stale.append(path)
            if not args.check:
                path.write_text(text)
    for path in stale:
        verb = "is out of date" if args.check else "rewritten"
        print(f"{path.relative_to(ROOT)} {verb}", file=sys.stderr)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
