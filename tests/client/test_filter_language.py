"""The run query language in the kernel (offline ``Api``, ``select_runs``): the shared
vectors of tests/filter_vectors.json, and the old single-filter forms kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wanllm_jupyter.core.errors import UsageError
from wanllm_jupyter.core.run_filters import Term, parse_query, select_runs

VECTORS = json.loads((Path(__file__).parents[1] / "filter_vectors.json").read_text())
ORDER = {r["name"]: i for i, r in enumerate(VECTORS["runs"])}


def _names(runs: list[dict[str, Any]]) -> list[str]:
    return sorted((r["name"] for r in runs), key=ORDER.__getitem__)


@pytest.mark.parametrize("case", VECTORS["matches"], ids=lambda c: c["query"] or "<empty>")
def test_vector_selects_its_runs(case: dict[str, Any]) -> None:
    assert _names(select_runs(VECTORS["runs"], [case["query"]])) == case["names"]


@pytest.mark.parametrize("case", VECTORS["errors"], ids=lambda c: c["query"])
def test_vector_is_refused(case: dict[str, str]) -> None:
    with pytest.raises(UsageError) as e:
        parse_query(case["query"])
    assert case["error"] in str(e.value)


def test_queries_in_a_list_are_anded() -> None:
    assert _names(select_runs(VECTORS["runs"], ["tag:sweep", "state:failed"])) == ["Gamma big"]


def test_parse_shapes() -> None:
    assert parse_query("tag:a b OR -config.x>=1") == (
        (Term("tags", "contains", "a"), Term("", "word", "b")),
        (Term("config.x", "ge", 1, True),),
    )
    # a quote inside a key is literal; one opening a value quotes it (text, not JSON)
    assert parse_query('config.a"b=1') == ((Term('config.a"b', "eq", 1),),)
    assert parse_query('config.n="5"') == ((Term("config.n", "eq", "5"),),)
    assert parse_query("created_at>1970-01-01T00:00:01Z")[0][0].value == 1_000_000
