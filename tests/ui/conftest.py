"""Browser-test fixtures: a real ``jupyter lab`` subprocess and headless Debian Chromium.

``lab`` (session scope) starts JupyterLab on a free port with a random token, a
non-root ``base_url`` (``/wl/``), a temp root dir and a temp SQLite database
(``WANLLM_DATABASE_URL``), and yields a :class:`Lab`:

* ``lab.url`` — ``http://127.0.0.1:<port>/wl/``; ``lab.token``;
* ``lab.api`` — a ``wanllm_jupyter._http.Connection`` to the server (REST setup);
* ``lab.page(path="lab")`` — a fresh Playwright page (own browser context),
  logged in with the token and loaded with JupyterLab ready (closed with the browser;
  screenshotted to ``tests/artifacts/failure-<test>-<n>.png`` when the test fails);
* ``lab.root`` — the server's root dir (put notebooks there);
* ``lab.env`` — the environment a logging subprocess needs (``WANLLM_URL``,
  ``WANLLM_TOKEN``).

``notebook7`` is the same around ``jupyter notebook`` (Notebook 7): ``page("notebooks/x.ipynb")``.

Chromium is Debian's ``/usr/bin/chromium`` driven by the ``playwright`` Python
package (never ``playwright install``); tests needing it are marked
``@pytest.mark.browser`` and skip, saying why, when Chromium is missing.
The ``screenshot`` fixture saves PNGs to ``tests/artifacts/`` (gitignored) and,
on request, a copy under ``docs/``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS
from wanllm_jupyter._http import Connection

BASE_URL = "/wl/"
STARTUP_TIMEOUT = 60.0
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
DOCS = ROOT / "docs"
OPEN_PAGES: list[Any] = []  # pages of the running test, screenshotted when it fails


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Lab:
    """A running JupyterLab; see the module docstring."""

    url: str
    token: str
    root: Path
    env: dict[str, str]
    api: Connection
    page: Callable[..., Any]
    log: Path


def _wait_ready(proc: subprocess.Popen[bytes], api: Connection, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            api.get_json("wanllm/api/v1/health")
            return
        except Exception:
            time.sleep(0.25)
    raise RuntimeError(
        f"jupyter did not answer within {STARTUP_TIMEOUT}s:\n{log.read_text()[-4000:]}"
    )


@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """Override pytest-jupyter's autouse loop: Playwright's sync API keeps its own loop running
    in this thread, which pytest-jupyter's fixture would pick up and then fail to close."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(autouse=True)
def jp_server_cleanup() -> Iterator[None]:
    """Override pytest-jupyter's autouse cleanup: Jupyter runs as a subprocess here, and its
    cleanup of a never-started in-process ServerApp only leaves an un-awaited coroutine."""
    yield


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        for i, page in enumerate(OPEN_PAGES):
            if not page.is_closed():
                with suppress(Exception):
                    save_screenshot(page, f"failure-{item.name}-{i}")
    if report.when == "teardown":
        OPEN_PAGES.clear()
    return report


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright (sync API)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    # the suite runs a worker a core: a browser test can share its core with another
    expect.set_options(timeout=15_000)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="package")
def lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """A real ``jupyter lab`` with the wanllm extensions under ``/wl/``, token auth, temp SQLite.

    Chromium starts only when a test first calls ``lab.page()``."""
    with _jupyter(tmp_path_factory, request, "jupyterlab", "#jp-main-dock-panel") as app:
        yield app


@pytest.fixture(scope="package")
def notebook7(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Lab]:
    """Like ``lab`` but a real ``jupyter notebook`` (Notebook 7); ``page(path)`` waits for its
    shell (``#main-panel``), e.g. ``page("notebooks/x.ipynb")`` or ``page("tree")``."""
    with _jupyter(tmp_path_factory, request, "notebook", "#main-panel") as app:
        yield app


@contextmanager
def _jupyter(
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
    module: str,
    ready: str,
) -> Iterator[Lab]:
    """Run ``python -m <module>`` (``jupyterlab`` or ``notebook``) as described for ``lab``."""
    home = tmp_path_factory.mktemp(module)
    root = home / "root"
    root.mkdir()
    port, token = free_port(), secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}{BASE_URL}"
    env = {
        **os.environ,
        "WANLLM_DATABASE_URL": f"sqlite:///{home / 'wanllm.sqlite'}",
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "WANLLM_DIR": str(home),  # the kernels' spools: not the user's data dir
        "WANLLM_URL": url,
        "WANLLM_TOKEN": token,
    }
    env.pop("WANLLM_REDIS_URL", None)
    settings = home / "settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (
        settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    ).write_text('{"fetchNews": "false", "checkForUpdates": false}')
    env["JUPYTERLAB_SETTINGS_DIR"] = str(settings)
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(home / "workspaces")
    log = home / "jupyter.log"
    cmd = [
        sys.executable,
        "-m",
        module,
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--ServerApp.token={token}",
        f"--ServerApp.base_url={BASE_URL}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.port_retries=0",
        "--allow-root",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=root)
    api = Connection(url, token)

    def new_page(path: str = "lab", viewport: tuple[int, int] = (1280, 800)) -> Any:
        browser = request.getfixturevalue("browser")
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        page = context.new_page()
        OPEN_PAGES.append(page)
        page.goto(f"{url}{path}{'&' if '?' in path else '?'}token={token}")
        page.wait_for_selector(ready, timeout=60_000)
        return page

    try:
        _wait_ready(proc, api, log)
        yield Lab(url=url, token=token, root=root, env=env, api=api, page=new_page, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        api.close()


def save_screenshot(target: Any, name: str, *, docs: bool = False) -> Path:
    """Screenshot a page or locator to ``tests/artifacts/<name>.png`` (and ``docs/<name>.png``)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    target.screenshot(path=str(path))
    if docs:
        shutil.copyfile(path, DOCS / f"{name}.png")
    return path


@pytest.fixture(scope="package")
def screenshot() -> Callable[..., Path]:
    """``screenshot(page_or_locator, name, docs=False)`` → saves ``tests/artifacts/<name>.png``
    (and a copy as ``docs/<name>.png`` when ``docs``)."""
    return save_screenshot
