"""A PostgreSQL batch is one statement without a transaction of its own: it must
write all of the batch or nothing, even when its connection dies mid-statement,
and an unknown run must not leave the batch id claimed."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import numpy as np
import pytest
from wanllm_server.store.base import RunCreate, RunNotFound, StoreUnavailable
from wanllm_server.store.postgres import PostgresStore

from tests.store.test_postgres_specific import T0, batch, pg_dsn, run, sql, with_store

__all__ = ["pg_dsn"]  # the fixture, imported for pytest

COUNTS = """SELECT (SELECT count(*) FROM ingest_batches WHERE batch_id = $1) AS claims,
                   (SELECT coalesce(sum(n), 0) FROM metric_tail) AS tail,
                   (SELECT coalesce(sum(n), 0) FROM metric_blocks) AS blocks,
                   (SELECT coalesce(sum(count), 0) FROM metric_summaries) AS summarised,
                   (SELECT count(*) FROM batch_live_seq WHERE batch_id = $1) AS seqs"""


def test_a_batch_killed_mid_statement_writes_nothing_and_its_retry_everything(
    pg_dsn: str,
) -> None:
    """The writer blocks on a summary row another session holds; its backend is
    terminated there (after the statement's earlier parts ran): nothing of the
    batch remains, and the client's retry of the same batch id is written, not
    taken for a replay."""

    async def go(store: PostgresStore) -> None:
        r, _ = await store.create_run(RunCreate(project="p"))
        first = batch(r.id, "m", [0, 1], [T0, T0 + 1], [1.0, 2.0], "b0")
        await store.write_metrics(first)
        victim = batch(r.id, "m", range(2, 902), T0 + np.arange(2, 902), np.ones(900), "b1")
        holder = await asyncpg.connect(store.dsn)
        try:
            tx = holder.transaction()
            await tx.start()
            await holder.execute("SELECT 1 FROM metric_summaries FOR UPDATE")
            writing = asyncio.ensure_future(store.write_metrics(victim))
            pid = None
            for _ in range(200):  # until the writer waits on the row lock
                pid = await holder.fetchval(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                )
                if pid is not None:
                    break
                await asyncio.sleep(0.05)
            assert pid is not None, "the writer never waited on the summary row"
            await holder.execute("SELECT pg_terminate_backend($1)", pid)
            with pytest.raises(StoreUnavailable):
                await writing
            await tx.rollback()
        finally:
            await holder.close()
        (c,) = await sql(store.dsn, COUNTS, "b1")
        assert dict(c) == {"claims": 0, "tail": 2, "blocks": 0, "summarised": 2, "seqs": 0}
        victim.batch_id = "b1"
        result = await store.write_metrics(victim)
        assert not result.duplicate and result.points == 900
        assert result.live_seq == {str(r.id): 2}
        (c,) = await sql(store.dsn, COUNTS, "b1")
        assert dict(c) == {"claims": 1, "tail": 2, "blocks": 900, "summarised": 902, "seqs": 1}
        assert len(await store.history(r.id, "m")) == 902

    run(with_store(pg_dsn, go))


def test_an_unknown_run_leaves_the_batch_unclaimed(pg_dsn: str) -> None:
    """A batch naming a run that does not exist writes nothing, not even its claim:
    once the run exists the same batch id is written; then it is a replay."""

    async def go(store: PostgresStore) -> None:
        rid = uuid.uuid4()
        b = batch(rid, "m", [0, 1, 2], [T0, T0, T0], [1.0, 2.0, 3.0], "late")
        with pytest.raises(RunNotFound):
            await store.write_metrics(b)
        (c,) = await sql(store.dsn, COUNTS, "late")
        assert dict(c) == {"claims": 0, "tail": 0, "blocks": 0, "summarised": 0, "seqs": 0}
        await store.create_run(RunCreate(project="p", id=rid))
        assert not (await store.write_metrics(b)).duplicate
        again = await store.write_metrics(b)
        assert again.duplicate and again.live_seq == {str(rid): 1}
        assert (await store.stats(rid, "m")).count == 3

    run(with_store(pg_dsn, go))
