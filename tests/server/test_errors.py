"""Every error class of docs/api.md, with its exact JSON body, and never a traceback."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable

import asyncpg
import pyarrow as pa
import pytest
from prometheus_client import REGISTRY
from wanllm_server.handlers.base import as_api_error

from tests.server.server_helpers import body, create_run

BATCH = "metrics/batch"


def rejected(reason: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "wanllm_batches_rejected_total", {"kind": "metrics", "reason": reason}
        )
        or 0.0
    )


async def test_malformed_json_names_the_position(api):
    resp = await api(
        "POST", BATCH, body=b'{"metrics": [1, 2,}', headers={"Content-Type": "application/json"}
    )
    assert resp.code == 400
    assert body(resp)["message"].startswith("malformed JSON at line 1 column 19 (char 18): ")
    assert body(resp)["errors"] == []
    resp = await api("POST", BATCH, body=b"[1]", headers={"Content-Type": "application/json"})
    assert resp.code == 400
    assert body(resp)["message"] == "request body must be a JSON object, got an array"


async def test_wrong_content_type_is_415(api):
    before = rejected("content_type")
    resp = await api("POST", BATCH, body=b"{}", headers={"Content-Type": "text/plain"})
    assert resp.code == 415
    assert body(resp)["message"] == (
        "content type 'text/plain' not supported; use "
        "application/json, application/vnd.wanllm.columnar+json, "
        "application/vnd.apache.arrow.stream"
    )
    assert rejected("content_type") == before + 1


@pytest.mark.parametrize("wanllm_config", [{"max_columnar_batch_size": 2000}])
async def test_batch_over_max_batch_size_is_413(api):
    """The row form keeps the seed's 1,000; the compact forms have their own limit."""
    rid = (await create_run(api))["id"]
    rows = [{"run_id": rid, "metric_name": "m", "value": 1.0}] * 1001
    resp = await api("POST", BATCH, body={"metrics": rows})
    assert resp.code == 413
    assert body(resp) == {
        "message": "batch of 1001 points exceeds max_batch_size 1000",
        "errors": [],
    }
    for n, code in ((2000, 200), (2001, 413)):
        col = {
            "run_id": rid,
            "names": ["m"],
            "k": [0] * n,
            "s": list(range(n)),
            "v": [1.0] * n,
            "format": "columnar",
        }
        resp = await api("POST", BATCH, body=col)
        assert resp.code == code
    assert body(resp)["message"] == "batch of 2001 points exceeds max_columnar_batch_size 2000"


@pytest.mark.parametrize("wanllm_config", [{"max_body_size": 1000}])
async def test_body_over_max_body_size_is_413(api):
    resp = await api("POST", BATCH, body=b" " * 1001, headers={"Content-Type": "application/json"})
    assert resp.code == 413
    assert body(resp)["message"] == "request body of 1001 bytes exceeds max_body_size 1000"


async def test_invalid_items_are_422_by_index(api):
    rid = (await create_run(api))["id"]
    rows = [
        {"run_id": rid, "metric_name": "ok", "value": 1.0},
        {"run_id": rid, "metric_name": "", "value": "high"},
        {"run_id": "nope", "metric_name": "x" * 256, "value": 1.0, "step": 2**63},
    ]
    resp = await api("POST", BATCH, body={"metrics": rows, "extra": 1})
    assert resp.code == 422
    assert body(resp)["errors"] == [{"index": -1, "field": "extra", "reason": "unknown field"}]
    resp = await api("POST", BATCH, body={"metrics": rows})
    assert resp.code == 422
    errors = {(e["index"], e["field"]): e["reason"] for e in body(resp)["errors"]}
    assert errors == {
        (1, "metric_name"): "empty",
        (1, "value"): "must be a number or one of NaN, Infinity, -Infinity",
        (2, "run_id"): "not a UUID: 'nope'",
        (2, "metric_name"): "longer than 255 characters (256)",
        (2, "step"): f"out of range [{-(2**63)}, {2**63 - 1}]: {2**63}",
    }
    # nothing of the rejected batch was written
    assert (await api("GET", f"runs/{rid}/metrics/ok/latest")).code == 404
    resp = await api("POST", BATCH, body={"batch_id": 7, "metrics": []})
    assert body(resp)["errors"] == [
        {"index": -1, "field": "batch_id", "reason": "must be a string"}
    ]


async def test_unknown_run_is_404_and_bad_ids_400(api):
    other = "00000000-0000-4000-8000-000000000001"
    resp = await api(
        "POST", BATCH, body={"metrics": [{"run_id": other, "metric_name": "m", "value": 1}]}
    )
    assert resp.code == 404 and body(resp)["message"] == f"run {other} not found"
    resp = await api("GET", "runs/xyz/metrics/m")
    assert resp.code == 400 and body(resp)["message"] == "run id 'xyz' is not a UUID"
    rid = (await create_run(api))["id"]
    resp = await api("GET", f"runs/{rid}/metrics/m", params={"samples": "many"})
    assert resp.code == 400
    assert body(resp)["message"] == "query argument samples='many' is not an integer"
    resp = await api("GET", f"runs/{rid}/metrics/m", params={"samples": 10, "limit": 5})
    assert resp.code == 400 and body(resp)["message"].startswith("samples= works on a step")


@pytest.mark.parametrize("wanllm_config", [{"database_url": "sqlite:////dev/null/wanllm.db"}])
async def test_store_unavailable_is_503_with_retry_after(api):
    resp = await api("POST", "runs", body={"project": "p"})
    assert resp.code == 503 and resp.headers["Retry-After"] == "5"
    message = body(resp)["message"]
    assert message.startswith("database unavailable: cannot open sqlite:///")
    assert "Traceback" not in resp.body.decode()
    health = body(await api("GET", "health"))
    assert health["status"] == "degraded" and health["store"]["ok"] is False


@pytest.mark.parametrize("value", ["INF", "-inf", "nan", "1e300"])
async def test_time_arguments_out_of_range_are_400(api, value):
    """Found by schemathesis: ``end_time=INF`` was a 500."""
    run = await create_run(api)
    resp = await api("GET", f"runs/{run['id']}/system-metrics", params={"end_time": value})
    assert resp.code == 400
    assert body(resp)["message"] == (
        f"query argument end_time={value!r} is out of range for a time"
    )


# --------------------------------------------------------------------- the safety net
def _raised(action: Callable[[], object]) -> BaseException:
    try:
        action()
    except Exception as e:
        return e
    raise AssertionError("no error")


def _sqlite(sql: str, *params: object) -> Callable[[], object]:
    return lambda: sqlite3.connect(":memory:").execute(sql, params)


@pytest.mark.parametrize(
    "action",
    [
        _sqlite("SELECT ?", 2**70),  # OverflowError
        _sqlite("SELECT ?", {"a": 1}),  # ProgrammingError: Error binding parameter
        lambda: pa.array([2**63], pa.uint64()).cast(pa.int64()),  # ArrowInvalid
    ],
    ids=["sqlite-overflow", "sqlite-binding", "arrow-invalid"],
)
def test_driver_errors_from_data_are_400(action: Callable[[], object]) -> None:
    """Should a value slip past the validators, the driver's complaint is a 400."""
    err = as_api_error(_raised(action))
    assert err is not None and err.status_code == 400, err
    assert err.message.startswith("a value of this request cannot be stored or compared: ")


def test_postgres_data_errors_are_400(make_pg_database: Callable[..., str]) -> None:
    """Server side (SQLSTATE 22: NUL in text, int overflow) and client side (a value
    asyncpg cannot encode for its parameter)."""
    dsn = make_pg_database(timescale=False)

    async def errors() -> list[BaseException]:
        conn = await asyncpg.connect(dsn)
        out = []
        try:
            for sql, arg in (("SELECT $1::text", "a\x00b"), ("SELECT $1::int4", 2**40)):
                try:
                    await conn.fetchval(sql, arg)
                except Exception as e:
                    out.append(e)
            try:
                await conn.fetchval("SELECT 2147483647::int4 + 1")
            except Exception as e:
                out.append(e)
        finally:
            await conn.close()
        return out

    raised = asyncio.run(errors())
    assert len(raised) == 3
    for exc in raised:
        err = as_api_error(exc)
        assert err is not None and err.status_code == 400, (exc, err)


def test_programming_errors_stay_internal() -> None:
    """Not every driver error is the request's fault: those remain 500s."""
    assert as_api_error(_raised(_sqlite("SELECT ?, ?", 1))) is None
    assert as_api_error(_raised(_sqlite("SELECT nope"))) is None
