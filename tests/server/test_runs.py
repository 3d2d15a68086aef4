"""Runs and projects endpoints."""

from __future__ import annotations

from tests.server.server_helpers import body, create_run, new_id, post_points


async def test_create_get_and_resume(api):
    rid = new_id()
    resp = await api(
        "POST",
        "runs",
        body={
            "project": "p1",
            "name": "first",
            "id": rid,
            "config": {"lr": 0.1},
            "tags": ["a"],
            "git": {"branch": "main", "dirty": False},
        },
    )
    assert resp.code == 201
    run = body(resp)
    assert (run["id"], run["project"], run["name"], run["state"]) == (rid, "p1", "first", "running")
    assert run["config"] == {"lr": 0.1} and run["tags"] == ["a"]
    assert run["git"]["branch"] == "main" and run["created_at"].endswith("Z")
    assert body(await api("GET", f"runs/{rid}")) == run

    resp = await api("POST", "runs", body={"project": "p1", "id": rid, "config": {"bs": 8}})
    assert resp.code == 200
    resumed = body(resp)
    assert resumed["resumed"] is True and resumed["config"] == {"lr": 0.1, "bs": 8}


async def test_resume_modes(api):
    rid = new_id()
    resp = await api("POST", "runs", body={"id": rid, "resume": "must"})
    assert resp.code == 404 and body(resp)["message"] == f"run {rid} not found"
    await create_run(api, id=rid)
    resp = await api("POST", "runs", body={"id": rid, "resume": "never"})
    assert resp.code == 409
    assert body(resp) == {"message": f"run {rid} already exists (resume='never')", "errors": []}
    resp = await api("POST", "runs", body={"id": rid, "resume": "must"})
    assert resp.code == 200 and body(resp)["resumed"] is True


async def test_create_rejects_bad_fields(api):
    resp = await api(
        "POST", "runs", body={"project": 3, "tags": ["x", 1], "colour": "red", "resume": "maybe"}
    )
    assert resp.code == 422
    assert sorted(body(resp)["errors"], key=lambda e: e["field"]) == [
        {"index": 0, "field": "colour", "reason": "unknown field"},
        {"index": 0, "field": "project", "reason": "must be a string"},
        {"index": 0, "field": "resume", "reason": "must be one of allow, must, never"},
        {"index": 0, "field": "tags", "reason": "must be a list of strings"},
    ]
    resp = await api("POST", "runs", body={"id": "not-a-uuid"})
    assert resp.code == 400 and body(resp)["message"] == "run id 'not-a-uuid' is not a UUID"


async def test_update_heartbeat_delete(api):
    run = await create_run(api, tags=["a", "b"])
    rid = run["id"]
    resp = await api(
        "PATCH",
        f"runs/{rid}",
        body={
            "state": "finished",
            "exit_code": 0,
            "summary": {"loss": 0.5},
            "add_tags": ["c"],
            "remove_tags": ["a"],
        },
    )
    assert resp.code == 200, resp.body
    run = body(resp)
    assert run["state"] == "finished" and run["exit_code"] == 0
    assert run["summary"] == {"loss": 0.5} and sorted(run["tags"]) == ["b", "c"]
    assert run["finished_at"] is not None

    resp = await api("PATCH", f"runs/{rid}", body={"state": "exploded"})
    assert resp.code == 422
    assert body(resp)["errors"] == [
        {
            "index": 0,
            "field": "state",
            "reason": "must be one of running, finished, failed, crashed",
        }
    ]

    before = run["heartbeat_at"]
    assert (await api("POST", f"runs/{rid}/heartbeat")).code == 204
    assert body(await api("GET", f"runs/{rid}"))["heartbeat_at"] >= before

    assert (await api("DELETE", f"runs/{rid}")).code == 204
    assert (await api("GET", f"runs/{rid}")).code == 404
    assert (await api("DELETE", f"runs/{rid}")).code == 404
    assert (await api("POST", f"runs/{rid}/heartbeat")).code == 404


async def test_list_filters_sort_and_cursor(api):
    for i in range(5):
        await create_run(
            api,
            project="lst",
            name=f"r{i}",
            config={"lr": i / 10},
            tags=["even"] if i % 2 == 0 else ["odd"],
        )
    await create_run(api, project="other")
    page = body(await api("GET", "runs", params={"project": "lst"}))
    assert page["total"] == 5 and len(page["runs"]) == 5

    page = body(
        await api(
            "GET",
            "runs",
            params={"project": "lst", "tag": "even", "filter": "config.lr>=0.15", "sort": "name"},
        )
    )
    assert [r["name"] for r in page["runs"]] == ["r2", "r4"]

    names, cursor = [], None
    while True:
        params = {"project": "lst", "sort": "-name", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = body(await api("GET", "runs", params=params))
        names += [r["name"] for r in page["runs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == ["r4", "r3", "r2", "r1", "r0"]

    # the sidebar's query language (docs/filters.md)
    page = body(
        await api(
            "GET",
            "runs",
            params={"project": "lst", "filter": "tag:odd OR config.lr>=0.35", "sort": "name"},
        )
    )
    assert [r["name"] for r in page["runs"]] == ["r1", "r3", "r4"]
    resp = await api("GET", "runs", params={"filter": "config.lr!0"})
    assert resp.code == 400
    assert body(resp)["message"].startswith("filter 'config.lr!0': expected <field><op><value>")
    resp = await api("GET", "runs", params={"filter": "tag:odd OR"})
    assert resp.code == 400 and body(resp)["message"] == "'OR' needs a term after it"
    resp = await api("GET", "runs", params={"limit": 5000})
    assert resp.code == 400
    assert body(resp)["message"] == "query argument limit=5000 is out of range [1, 1000]"


async def test_recorded_times_are_kept(api):
    """A run synced later keeps when it started and ended (``created_at``/``finished_at``)."""
    rid = new_id()
    resp = await api(
        "POST", "runs", body={"id": rid, "project": "times", "created_at": "2026-01-02T03:04:05.5Z"}
    )
    assert resp.code == 201 and body(resp)["created_at"] == "2026-01-02T03:04:05.500000Z"
    resp = await api(
        "PATCH", f"runs/{rid}", body={"state": "finished", "finished_at": 1767323045.75}
    )
    assert body(resp)["finished_at"] == "2026-01-02T03:04:05.750000Z"
    assert body(resp)["created_at"] == "2026-01-02T03:04:05.500000Z"
    resp = await api("POST", "runs", body={"created_at": "yesterday"})
    assert resp.code == 422
    assert body(resp)["errors"] == [
        {"index": 0, "field": "created_at", "reason": "not an ISO-8601 time: 'yesterday'"}
    ]
    resp = await api("PATCH", f"runs/{rid}", body={"finished_at": True})
    assert resp.code == 422
    assert body(resp)["errors"][0]["field"] == "finished_at"


async def test_project_metric_names(api):
    a = await create_run(api, project="named")
    b = await create_run(api, project="named")
    await post_points(api, a["id"], {"train/loss": [(0, 1.0), (1, 0.5)]})
    await post_points(api, b["id"], {"train/loss": [(0, 2.0)], "lr": [(0, 0.1)]})
    resp = await api("GET", "projects/metric-names", params={"project": "named"})
    assert body(resp) == {
        "project": "named",
        "metrics": [{"name": "lr", "runs": 1}, {"name": "train/loss", "runs": 2}],
    }
    resp = await api("GET", "projects/metric-names")
    assert resp.code == 400
    assert body(resp)["message"] == "query argument 'project' is required"


async def test_projects(api):
    await create_run(api, project="alpha")
    run = await create_run(api, project="alpha")
    await api("PATCH", f"runs/{run['id']}", body={"state": "finished"})
    projects = {p["name"]: p for p in body(await api("GET", "projects"))["projects"]}
    assert projects["alpha"]["run_count"] == 2 and projects["alpha"]["running"] == 1
    assert projects["alpha"]["last_created_at"].endswith("Z")
