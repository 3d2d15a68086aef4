"""Without PostgreSQL/TimescaleDB binaries, store tests skip saying why (not error)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_store_tests_skip_with_the_reason_when_postgresql_is_missing(tmp_path: Path) -> None:
    env = {**os.environ, "WANLLM_PG_BINDIR": str(tmp_path / "no-postgresql")}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-ra",
         "tests/store/test_runs.py", "tests/store/test_migrations.py",
         "-k", "info or upgrades"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "error" not in text.splitlines()[-1], text
    # SQLite still runs; each PostgreSQL flavour skips, naming the missing binary
    assert "passed" in text.splitlines()[-1] and "skipped" in text.splitlines()[-1], text
    assert "SKIPPED" in text and "service unavailable:" in text and "initdb" in text, text
