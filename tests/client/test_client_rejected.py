"""No operation can block the ones behind it (issue 9): keys that can never be valid
never reach the wire; an operation the server rejects (4xx), or that keeps failing
with 5xx while later ones get through, is set aside with the server's message and
delivery goes on; `wanllm sync` reports it and `--retry-rejected` sends it again.
A server failing everything sets nothing aside. Real Jupyter servers throughout."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

import wanllm_jupyter as wl
from tests.client.client_helpers import exact_points
from tests.client.fault_proxy import FaultProxy
from tests.jupyter_process import JupyterServer
from wanllm_jupyter import _columns, cli
from wanllm_jupyter._ops import Op, Patch, System
from wanllm_jupyter._rejected import REJECTED
from wanllm_jupyter._replay import Replayer
from wanllm_jupyter._spool import PENDING, SYNCED, Spool, read_ops
from wanllm_jupyter.core.errors import ServerError
from wanllm_jupyter.core.limits import MAX_METRIC_NAME_LENGTH

POISON_KEYS = {
    "bad\x00name": 1.0,
    "lone\ud800surrogate": 2.0,
    "x" * (MAX_METRIC_NAME_LENGTH + 1): 3.0,
    7: 4.0,
    "": 5.0,
}


def run_dir(tmp_path: Path, run_id: str) -> Path:
    return tmp_path / "wanllm" / "runs" / run_id


def rejected(tmp_path: Path, run_id: str) -> list[dict]:
    return records(run_dir(tmp_path, run_id) / REJECTED)


def records(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def sync(server: JupyterServer, tmp_path: Path, *extra: str) -> int:
    argv = ["--url", server.url, "--token", server.token, "--dir", str(tmp_path), "sync"]
    return cli.main([*argv, *extra])


def test_poison_keys_among_1000_points_never_reach_the_wire(
    online: JupyterServer, api: wl.Api, tmp_path: Path
) -> None:
    run = wl.init(project="t-poison", system_metrics=False)
    with pytest.warns(_columns.WanllmWarning) as warned:
        for i in range(1000):
            wl.log({"loss": 1.0 / (i + 1), **(POISON_KEYS if i == 500 else {})})
        wl.finish()
        report = run.report
    assert len(warned) == len(POISON_KEYS)  # one warning per bad key, nothing raised
    assert report is not None and report.sent_points == 1000
    assert report.set_aside_ops == report.spooled_points == 0
    exact_points(api, run.id, ["loss"], 1000)
    assert api.run(run.id).state == "finished"
    assert not (run_dir(tmp_path, run.id) / PENDING).exists() and not rejected(tmp_path, run.id)


def test_init_arguments_are_checked_before_anything_is_sent(online: JupyterServer) -> None:
    for kwargs, what in [
        ({"project": "p\x00"}, "project"),
        ({"name": "n" * 300}, "name"),
        ({"tags": ["ok", "t\ud800"]}, r"tags\[1\]"),
        ({"tags": [f"t{i}" for i in range(101)]}, "tags"),
        ({"config": {"a\x00": 1}}, "config: key"),
        ({"config": {"a": {"b": 2**70}}}, "config: at a.b: integer out of the int64 range"),
        ({"notes": "n" * 70_000}, "notes"),
    ]:
        with pytest.raises(ValueError, match=what):
            wl.init(system_metrics=False, **kwargs)
    assert wl.run is None


def test_a_metrics_batch_forced_past_the_client_check_is_set_aside(
    online: JupyterServer, api: wl.Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_columns, "text_problem", lambda *a, **k: None)
    run = wl.init(project="t-forced", system_metrics=False)
    sender = run.sender
    assert sender is not None
    for i in range(500):
        wl.log({"loss": float(i)})
    wait_for(lambda: sender.report.sent_points == 500)
    poison = "x" * (MAX_METRIC_NAME_LENGTH + 1)  # the server refuses it (4xx)
    with pytest.warns(_columns.WanllmWarning, match="rejected a metrics operation"):
        wl.log({poison: 1.0}, step=500, commit=False)
        wait_for(lambda: sender.report.set_aside_ops == 1)
    for i in range(500, 1000):
        wl.log({"loss": float(i)})
    with pytest.warns(_columns.WanllmWarning, match="rejected a patch operation"):
        wl.finish()  # the summary patch carries the name too
        report = run.report
    assert report is not None and report.sent_points == 1000 and report.spooled_points == 0
    assert report.set_aside_ops == 2 and report.set_aside_points == 1
    assert str(MAX_METRIC_NAME_LENGTH) in (report.set_aside_first or "")
    assert "set aside" in report.describe() and "--retry-rejected" in report.describe()
    exact_points(api, run.id, ["loss"], 1000)
    assert api.run(run.id).state == "finished"  # the state patch came after them
    batch, patch = rejected(tmp_path, run.id)
    assert batch["op"] == "metrics" and batch["body"]["names"] == [poison]
    assert patch["op"] == "patch" and patch["body"]["summary"] == {poison: 1.0, "loss": 999.0}
    for record in (batch, patch):
        assert 400 <= record["status"] < 500 and str(MAX_METRIC_NAME_LENGTH) in record["message"]


def test_a_spooled_rejected_operation_is_set_aside_by_sync(
    server: JupyterServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = wl.init(project="t-sync-poison", mode="offline", system_metrics=False)
    for i in range(300):
        wl.log({"a": float(i)})
        if i == 100:  # an operation no server takes (422), spooled between the points
            bogus = Patch(run.id, {"bogus": 1})  # type: ignore[typeddict-unknown-key]
            run.sender.ops.append(bogus)  # type: ignore[union-attr]
    wl.finish(quiet=True)
    assert sync(server, tmp_path) == 0  # was: FAILED on every attempt
    out = capsys.readouterr().out
    assert "1 set aside" in out and "bogus" in out and "--retry-rejected" in out
    api = wl.Api(server.url, server.token)
    exact_points(api, run.id, ["a"], 300)
    assert api.run(run.id).state == "finished"
    [record] = rejected(tmp_path, run.id)
    assert record["status"] == 422 and record["body"]["bogus"] == 1
    synced = list(read_ops(run_dir(tmp_path, run.id) / SYNCED))  # what the server has
    assert len(synced) > 3 and not any("bogus" in body for _, body in synced)
    assert sync(server, tmp_path, "--retry-rejected") == 1  # still refused: kept
    assert "0 set-aside operations sent, 1 still set aside" in capsys.readouterr().out
    assert len(rejected(tmp_path, run.id)) == 1
    assert cli.main(["--dir", str(tmp_path), "runs", "--offline"]) == 0
    assert "1 operations (0 points) set aside" in capsys.readouterr().out


def poison_patch(method: str, path: str, body: bytes) -> bool:
    return method == "PATCH" and b"poison" in body


@pytest.mark.slow
def test_an_operation_failing_with_5xx_while_later_ones_succeed_is_set_aside(
    server: JupyterServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FaultProxy(server.url, poison_patch) as proxy:
        run = wl.init(
            project="t-5xx-one", connection=wl.login(proxy.url, server.token), system_metrics=False
        )
        sender = run.sender
        assert sender is not None
        sender.retry_for, sender.probe_every = 0.3, 0.1
        for i in range(200):
            wl.log({"a": float(i)})
        wait_for(lambda: sender.report.sent_points == 200)
        run.config["poison"] = 1  # a patch this server answers 500, always
        wait_for(lambda: not sender.online)  # it was retried, then spooled
        with pytest.warns(_columns.WanllmWarning, match="rejected a patch operation"):
            for i in range(200, 400):
                wl.log({"a": float(i)})
                time.sleep(0.001)
            wl.finish(timeout=30)
            report = run.report
    assert report is not None and report.spooled_points == 0 and report.sent_points == 400
    assert report.set_aside_ops == 1 and "while later operations were accepted" in (
        report.set_aside_first or ""
    )
    api = wl.Api(server.url, server.token)
    exact_points(api, run.id, ["a"], 400)
    assert api.run(run.id).state == "finished" and "poison" not in api.run(run.id).config
    [record] = rejected(tmp_path, run.id)
    assert record["status"] == 500 and record["body"]["config"] == {"poison": 1}
    assert sync(server, tmp_path, "--retry-rejected") == 0  # straight to the server: accepted
    assert "1 set-aside operations sent, 0 still set aside" in capsys.readouterr().out
    assert api.run(run.id).config["poison"] == 1 and not rejected(tmp_path, run.id)


@pytest.mark.slow
def test_a_server_failing_everything_sets_nothing_aside(
    server: JupyterServer, tmp_path: Path
) -> None:
    with FaultProxy(server.url) as proxy:
        run = wl.init(
            project="t-5xx-all", connection=wl.login(proxy.url, server.token), system_metrics=False
        )
        sender = run.sender
        assert sender is not None
        sender.retry_for, sender.probe_every = 0.2, 0.05
        proxy.fault = lambda method, path, body: method != "GET"  # every write: 500
        for i in range(300):
            wl.log({"a": float(i)})
            if i % 50 == 0:
                run.config[f"c{i}"] = i
                time.sleep(0.2)  # many replays meanwhile, each answered 500
        wait_for(lambda: proxy.faults > 20)
        proxy.fault = None
        wl.finish(timeout=30)
        report = run.report
    assert report is not None and report.set_aside_ops == 0 and report.spooled_points == 0
    api = wl.Api(server.url, server.token)
    exact_points(api, run.id, ["a"], 300)
    stored = api.run(run.id)
    assert stored.state == "finished" and {f"c{i}" for i in range(0, 300, 50)} <= set(stored.config)
    assert not rejected(tmp_path, run.id) and report.sent_points == 300


def replayer_on(spool: Spool, failing: set[int], log: list[int]) -> Replayer:
    """A replayer whose server answers 500 to the ops numbered in ``failing``."""

    def send(op: Op) -> None:
        assert isinstance(op, System)
        log.append(op.body["n"])
        if op.body["n"] in failing:
            raise ServerError(500, "boom", method="PATCH", path="runs/x")

    return Replayer(send, spool.dir, fault_limit=2)


def numbers(spool: Spool) -> list[int]:
    return [b["n"] for _, b in read_ops(spool.path)] if spool.path.exists() else []


def test_replay_sets_aside_a_5xx_op_only_once_a_later_one_gets_through(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "run")
    spool.append([System({"n": i}) for i in range(3)])
    log: list[int] = []
    replayer = replayer_on(spool, {0}, log)
    with pytest.raises(ServerError):
        replayer.replay(spool)  # the 1st failure: retried on the next replay
    assert numbers(spool) == [0, 1, 2] and not (spool.dir / REJECTED).exists()
    assert replayer.replay(spool) is True  # the 2nd: held; 1 goes through; 0 fails again
    assert log == [0, 0, 1, 0, 2] and replayer.sent == 2 and replayer.set_aside == 1
    [record] = records(spool.dir / REJECTED)
    assert record["body"] == {"n": 0} and record["status"] == 500
    assert "while later operations were accepted" in record["message"]
    spool.close()


def test_replay_sets_nothing_aside_when_every_op_fails_or_none_follows(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "run")
    spool.append([System({"n": i}) for i in range(3)])
    replayer = replayer_on(spool, {0, 1, 2}, [])
    for _ in range(5):  # the server fails everything: an outage, not one bad op
        with pytest.raises(ServerError):
            replayer.replay(spool)
    assert numbers(spool) == [0, 1, 2] and replayer.set_aside == 0
    only = Spool(tmp_path, "alone")
    only.append([System({"n": 0})])
    replayer = replayer_on(only, {0}, [])
    with pytest.raises(ServerError):
        replayer.replay(only)
    for _ in range(3):  # held, but nothing after it shows the server works
        assert replayer.replay(only) is False
    assert numbers(only) == [0] and replayer.set_aside == 0
    only.append([System({"n": 1})])
    assert replayer.replay(only) is True and replayer.set_aside == replayer.sent == 1
    spool.close()
    only.close()


def test_an_exit_code_the_server_cannot_store_still_ends_the_run(
    online: JupyterServer, api: wl.Api, tmp_path: Path
) -> None:
    run = wl.init(project="t-exit-code", system_metrics=False)
    wl.log({"a": 1.0})
    with pytest.warns(_columns.WanllmWarning, match="not an int32"):
        wl.finish(exit_code=2**40)
        report = run.report
    assert report is not None and report.set_aside_ops == 0
    stored = api.run(run.id)
    assert (stored.state, stored.data["exit_code"]) == ("failed", 1)
    assert not rejected(tmp_path, run.id)
