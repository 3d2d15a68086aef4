"""Without PostgreSQL/TimescaleDB binaries, store tests skip saying why (not error)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_store_tests_skip_with_the_reason_when_postgresql_is_missing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env["WANLLM_PG_BINDIR"] = str(tmp_path / "no-postgresql")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-ra",
         "tests/store/test_runs.py", "tests/store/test_migrations.py",
         "-k", "info or upgrades"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    summary = out.stdout.splitlines()[-1]  # stderr may carry other plugins' warnings
    assert "error" not in summary, text
    # SQLite still runs; each PostgreSQL flavour skips, naming the missing binary
    assert "passed" in summary and "skipped" in summary, text
    assert "SKIPPED" in text and "service unavailable:" in text and "initdb" in text, text
