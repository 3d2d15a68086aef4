"""A shared notebook keeps its charts: the executed quickstart, exported to static HTML
with ``--to wanllm_html``, draws its bqplot lines in Chromium with no CDN reachable."""

from __future__ import annotations

import base64
import http.server
import re
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert.exporters import get_exporter

from tests.jupyter_process import JupyterServer
from wanllm_jupyter.html_export import (
    WanllmHTMLExporter,
    installed_amd_module,
    module_urls,
    widget_modules,
)

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "node_modules"
# What the page loads besides itself, served from the npm devDependencies.
LOCAL_ASSETS = {
    "/require.js": NODE_MODULES / "requirejs" / "require.js",
    "/embed-amd.js": NODE_MODULES / "@jupyter-widgets" / "html-manager" / "dist" / "embed-amd.js",
}


@pytest.fixture(scope="module")
def executed_quickstart(tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    """The quickstart run by a real kernel against a real server, widget state stored."""
    server = JupyterServer.shared()
    work = tmp_path_factory.mktemp("quickstart")
    nb = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANLLM_URL", server.url)
        mp.setenv("WANLLM_TOKEN", server.token)
        mp.setenv("WANLLM_DIR", str(work))
        NotebookClient(
            nb,
            timeout=120,
            kernel_name="python3",
            store_widget_state=True,
            resources={"metadata": {"path": str(work)}},
        ).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    return nb


@pytest.fixture(scope="module")
def asset_server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server for require.js and the HTML widget manager; records every path."""
    missing = [str(p) for p in LOCAL_ASSETS.values() if not p.is_file()]
    if missing:
        pytest.skip(f"npm devDependencies not installed (npm install): {missing}")
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path: str) -> str:
            path = path.split("?")[0]
            requested.append(path)
            return str(LOCAL_ASSETS.get(path, Path("/nonexistent")))

        def log_message(self, *args: Any) -> None:
            pass

    httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", requested
    httpd.shutdown()
    httpd.server_close()


def test_widget_modules_are_the_third_party_libraries(
    executed_quickstart: nbformat.NotebookNode,
) -> None:
    assert widget_modules(executed_quickstart) == {"bqplot", "bqscales"}


def test_inlined_module_is_the_installed_amd_build() -> None:
    url = module_urls(["bqplot"])["bqplot"]
    source = base64.b64decode(url.removeprefix("data:text/javascript;base64,"))
    assert source == installed_amd_module("bqplot")
    assert re.search(rb"define\(\[\"@jupyter-widgets/base\"\]", source[:2000])


def test_non_amd_module_is_left_to_the_cdn(tmp_path: Path) -> None:
    (tmp_path / "esm").mkdir()
    (tmp_path / "esm" / "index.js").write_text("export default {};\n")
    (tmp_path / "amd").mkdir()
    (tmp_path / "amd" / "index.js").write_text("/* licence */\n// note\ndefine([], () => 1);\n")
    assert installed_amd_module("esm", [str(tmp_path)]) is None
    assert installed_amd_module("amd", [str(tmp_path)]) is not None
    assert installed_amd_module("absent", [str(tmp_path)]) is None


@pytest.mark.browser
@pytest.mark.slow
def test_exported_quickstart_draws_its_charts_offline(
    executed_quickstart: nbformat.NotebookNode,
    asset_server: tuple[str, list[str]],
    browser: Any,
    tmp_path: Path,
) -> None:
    base, requested = asset_server
    assert get_exporter("wanllm_html") is WanllmHTMLExporter  # the nbconvert entry point
    exporter = WanllmHTMLExporter(
        require_js_url=f"{base}/require.js",
        widget_renderer_url=f"{base}/embed-amd.js",
    )
    html, _ = exporter.from_notebook_node(executed_quickstart)
    page_path = tmp_path / "quickstart.html"
    page_path.write_text(html, encoding="utf-8")

    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    cdn: list[str] = []
    page.on("request", lambda r: cdn.append(r.url) if "/dist/index" in r.url else None)
    try:
        page.goto(page_path.as_uri())
        # Each chart's lines carry the logged data: 300 steps make a long path.
        page.wait_for_function(
            "[...document.querySelectorAll('.bqplot path.line')]"
            ".filter(p => (p.getAttribute('d') || '').length > 1000).length >= 4",
            timeout=30_000,
        )
    finally:
        page.close()
    assert not cdn, f"widget libraries fetched from a CDN: {cdn}"
    assert not errors
    assert set(requested) <= set(LOCAL_ASSETS)
