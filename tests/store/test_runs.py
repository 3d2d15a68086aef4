"""Contract: runs, projects, run listing (filters, tags, search, sort, cursor)."""

from __future__ import annotations

import uuid

import pytest
from wanllm_server.store import (
    GitInfo,
    InvalidQuery,
    RunCreate,
    RunFilter,
    RunNotFound,
    RunQuery,
    RunUpdate,
    Store,
)


async def test_create_generates_name_and_defaults(store: Store) -> None:
    run, resumed = await store.create_run(RunCreate(project="p"))
    assert not resumed and run.state == "running" and run.project == "p"
    assert run.name.count("-") == 2 and run.name.split("-")[2].isdigit()
    assert run.created_at > 0 and run.created_at == run.updated_at and run.finished_at is None
    assert await store.get_run(run.id) == run


async def test_create_keeps_every_field(store: Store) -> None:
    rid = uuid.uuid4()
    spec = RunCreate(
        project="p", name="n", id=rid, config={"lr": 0.1, "opt": {"name": "adam"}}, tags=["a", "b"],
        notes="hi", git=GitInfo("main", "abc", True, "origin"), host="h",
        metadata={"python": "3.11"},
    )  # fmt: skip
    run, _ = await store.create_run(spec)
    got = await store.get_run(rid)
    assert got == run and got.id == rid and got.config == {"lr": 0.1, "opt": {"name": "adam"}}
    assert got.tags == ["a", "b"] and got.git == GitInfo("main", "abc", True, "origin")
    assert (got.notes, got.host, got.metadata) == ("hi", "h", {"python": "3.11"})


async def test_resume_merges_config_and_restarts(store: Store) -> None:
    run, _ = await store.create_run(RunCreate(project="p", name="n", config={"a": 1, "b": 2}))
    await store.update_run(run.id, RunUpdate(state="failed", exit_code=3))
    again, resumed = await store.create_run(
        RunCreate(project="p", id=run.id, config={"b": 3}, notes="x")
    )
    assert resumed and again.id == run.id and again.state == "running"
    assert again.config == {"a": 1, "b": 3} and again.name == "n" and again.notes == "x"
    assert again.finished_at is None and again.created_at == run.created_at


async def test_unknown_and_malformed_ids(store: Store) -> None:
    with pytest.raises(RunNotFound) as e:
        await store.get_run(uuid.UUID(int=1))
    assert e.value.run_id == str(uuid.UUID(int=1))
    with pytest.raises(RunNotFound):
        await store.update_run(uuid.UUID(int=1), RunUpdate(notes="x"))
    with pytest.raises(RunNotFound):
        await store.delete_run(uuid.UUID(int=1))
    with pytest.raises(InvalidQuery, match="not a UUID"):
        await store.get_run("not-a-uuid")  # type: ignore[arg-type]


async def test_update_fields(store: Store) -> None:
    run, _ = await store.create_run(RunCreate(config={"a": 1}, tags=["x", "y"]))
    u = await store.update_run(
        run.id,
        RunUpdate(name="m", summary={"loss": 0.5}, config={"b": 2}, add_tags=["z", "x"],
                  remove_tags=["y"], notes="n", heartbeat=True),
    )  # fmt: skip
    assert (u.name, u.summary, u.config, u.tags, u.notes) == (
        "m",
        {"loss": 0.5},
        {"a": 1, "b": 2},
        ["x", "z"],
        "n",
    )
    assert u.heartbeat_at is not None and u.updated_at >= run.updated_at
    u = await store.update_run(run.id, RunUpdate(summary={"acc": 1}, tags=["t"]))
    assert u.summary == {"loss": 0.5, "acc": 1} and u.tags == ["t"]
    done = await store.update_run(run.id, RunUpdate(state="finished", exit_code=0))
    assert done.state == "finished" and done.exit_code == 0 and done.finished_at is not None
    assert await store.get_run(run.id) == done
    with pytest.raises(InvalidQuery):
        await store.update_run(run.id, RunUpdate(state="exploded"))  # type: ignore[arg-type]


async def test_delete_removes_run(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    await store.delete_run(run.id)
    with pytest.raises(RunNotFound):
        await store.get_run(run.id)
    with pytest.raises(RunNotFound):
        await store.metric_names(run.id)


async def test_projects(store: Store) -> None:
    await store.create_run(RunCreate(project="a"))
    await store.create_run(RunCreate(project="a"))
    b, _ = await store.create_run(RunCreate(project="b"))
    await store.update_run(b.id, RunUpdate(state="finished"))
    projects = {p.name: p for p in await store.list_projects()}
    assert set(projects) == {"a", "b"}
    assert (projects["a"].run_count, projects["a"].running) == (2, 2)
    assert (projects["b"].run_count, projects["b"].running) == (1, 0)
    assert projects["b"].last_created_at == b.created_at


async def _fleet(store: Store) -> list:
    runs = []
    for i in range(7):
        r, _ = await store.create_run(
            RunCreate(project="p" if i < 6 else "q", name=f"run-{i}",
                      config={"lr": i / 10, "opt": "sgd" if i % 2 else "adam"},
                      tags=["even"] if i % 2 == 0 else ["odd", "x"],
                      notes="Special" if i == 3 else "")
        )  # fmt: skip
        if i < 5:
            await store.update_run(r.id, RunUpdate(summary={"loss": 1 - i / 10}))
        runs.append(r)
    await store.update_run(runs[1].id, RunUpdate(state="finished"))
    return runs


async def test_list_filters(store: Store) -> None:
    runs = await _fleet(store)

    async def names(**kw) -> list[str]:
        page = await store.list_runs(RunQuery(sort="name", **kw))
        assert page.total == len(page.runs)
        return [r.name for r in page.runs]

    assert await names(project="q") == ["run-6"]
    assert await names(states=["finished"]) == ["run-1"]
    assert await names(project="p", tags=["odd", "x"]) == ["run-1", "run-3", "run-5"]
    assert await names(filters=[RunFilter("config.lr", "ge", 0.4)]) == ["run-4", "run-5", "run-6"]
    assert await names(
        filters=[RunFilter("config.lr", "lt", 0.2), RunFilter("config.opt", "eq", "adam")]
    ) == ["run-0"]
    assert await names(filters=[RunFilter("summary.loss", "le", 0.7)]) == ["run-3", "run-4"]
    assert await names(
        filters=[RunFilter("config.opt", "in", ["sgd"]), RunFilter("summary.loss", "gt", 0)]
    ) == ["run-1", "run-3"]
    assert await names(filters=[RunFilter("name", "contains", "UN-2")]) == ["run-2"]
    assert await names(filters=[RunFilter("state", "ne", "running")]) == ["run-1"]
    assert await names(search="special") == ["run-3"]
    assert await names(search="ODD", project="q") == []
    assert await names(search="run-0") == ["run-0"]
    assert len(await names(filters=[RunFilter("id", "eq", str(runs[2].id))])) == 1


async def test_list_bad_queries(store: Store) -> None:
    for q in (
        RunQuery(filters=[RunFilter("nope", "eq", 1)]),
        RunQuery(filters=[RunFilter("config.", "eq", 1)]),
        RunQuery(filters=[RunFilter("config.lr", "in", 1)]),
        RunQuery(sort="-bogus"),
        RunQuery(cursor="garbage!!"),
        RunQuery(limit=0),
    ):
        with pytest.raises(InvalidQuery):
            await store.list_runs(q)


@pytest.mark.parametrize(
    "sort",
    ["name", "-name", "created_at", "-created_at", "config.lr", "-summary.loss", "summary.loss"],
)
async def test_cursor_pages_cover_everything_once(store: Store, sort: str) -> None:
    await _fleet(store)
    full = await store.list_runs(RunQuery(sort=sort, limit=100))
    seen, cursor = [], None
    while True:
        page = await store.list_runs(RunQuery(sort=sort, limit=2, cursor=cursor))
        assert page.total == 7 and len(page.runs) <= 2
        seen += [r.id for r in page.runs]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [r.id for r in full.runs] and len(set(seen)) == 7
    key = sort.lstrip("-")
    if key.startswith("summary."):  # missing values sort last in both directions
        assert [r.summary.get("loss") is None for r in full.runs] == [False] * 5 + [True] * 2
        vals = [r.summary["loss"] for r in full.runs[:5]]
        assert vals == sorted(vals, reverse=sort.startswith("-"))
    with pytest.raises(InvalidQuery):
        await store.list_runs(
            RunQuery(sort="project", cursor=page.next_cursor or _cursor_for(store, sort))
        )


def _cursor_for(store: Store, sort: str) -> str:
    from wanllm_server.store.cursor import encode_cursor

    return encode_cursor(sort, [False, 1, "x"])


async def test_mark_crashed(store: Store) -> None:
    old, _ = await store.create_run(RunCreate(name="old"))
    done, _ = await store.create_run(RunCreate(name="done"))
    await store.update_run(done.id, RunUpdate(state="finished"))
    fresh, _ = await store.create_run(RunCreate(name="fresh"))
    cut = fresh.created_at
    crashed = await store.mark_crashed(cut)
    assert [r.id for r in crashed] == [old.id] and crashed[0].state == "crashed"
    assert (await store.get_run(old.id)).state == "crashed"
    assert (await store.get_run(done.id)).state == "finished"
    assert (await store.get_run(fresh.id)).state == "running"
    assert await store.mark_crashed(cut) == []


async def test_info(store: Store) -> None:
    info = await store.info()
    assert info["backend"] == store.backend and info["schema_version"] >= 1
