"""The one wheel ships both import packages, the SQL, the prebuilt labextension,
the widget bundles and the auto-enable config; installed from that wheel (not
editable), Jupyter lists both extensions as enabled and OK.

The wheel goes into a fresh venv (its own prefix, so Jupyter finds the wheel's
config and labextension there, not the checkout's) that borrows its dependencies,
Jupyter included, from the environment running the tests: the base interpreter's
site-packages, plus the tests' own virtualenv's when they run inside one (a venv
made from the base interpreter would not see those)."""

from __future__ import annotations

import re
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = "wanllm_jupyter-0.1.0.data/data"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        timeout=600,
    )
    (path,) = out.glob("wanllm_jupyter-*.whl")
    return path


@pytest.mark.slow
def test_wheel_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "wanllm_jupyter/__init__.py",
        "wanllm_jupyter/static/run_table.js",
        "wanllm_server/__init__.py",
        "wanllm_server/app.py",
        "wanllm_server/sql/sqlite/0001_initial.sql",
        "wanllm_server/sql/postgres/0001_core.sql",
        "wanllm_server/sql/timescale/0001_hypertables.sql",
        f"{DATA}/etc/jupyter/jupyter_server_config.d/wanllm_server.json",
        f"{DATA}/share/jupyter/labextensions/wanllm-jupyter/package.json",
    }
    assert expected <= names, sorted(expected - names)
    assert any(
        n.startswith(f"{DATA}/share/jupyter/labextensions/wanllm-jupyter/static/remoteEntry.")
        for n in names
    )
    assert not any(n.startswith("server_extension/") for n in names)


@pytest.mark.slow
def test_installed_wheel_enables_both_extensions(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True)
    python = env_dir / "bin" / "python"

    # Run from outside the checkout so nothing resolves to the editable sources.
    def run(*args: str) -> str:
        r = subprocess.run(
            [python, *args], capture_output=True, text=True, cwd=tmp_path, timeout=120, check=True
        )
        return r.stdout + r.stderr

    if sys.prefix != sys.base_prefix:  # the tests run in a virtualenv: lend it
        purelib = run("-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip()
        lines = [f"import site; site.addsitedir({d!r})\n" for d in site.getsitepackages()]
        (Path(purelib) / "_tests_env.pth").write_text("".join(lines))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "-q",
            "--no-deps",
            "--force-reinstall",
            wheel,
        ],
        check=True,
        timeout=300,
    )

    # ``python -m jupyter server`` would run whichever ``jupyter-server`` is on PATH
    # (another interpreter); the modules run in the venv's own.
    servers = run("-m", "jupyter_server", "extension", "list")
    assert re.search(r"wanllm_server\s.*enabled", servers), servers
    assert re.search(r"wanllm_server\s+[\d.]+\s+.*OK", servers), servers
    labs = run("-m", "jupyterlab.labextensions", "list")
    assert re.search(r"wanllm-jupyter\s+v[\d.]+\s+.*enabled.*OK", labs), labs
    sql = run("-c", "from wanllm_server.store.migrations import sql_dir; print(sql_dir())")
    assert str(env_dir) in sql, sql
