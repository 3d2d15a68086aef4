"""Run table (anywidget ESM) with 10,000 rows in headless Chromium: time to first render,
to sort by a column, to filter, and per-frame cost while scrolling.

Loads ``wanllm_jupyter/static/run_table.js`` (build it first: ``npm run build:widgets``)
into a blank page with a minimal anywidget model; no Jupyter needed.

    python benchmarks/run_table_render.py [--rows 10000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

STATIC = ROOT / "wanllm_jupyter" / "static"
ORIGIN = "http://bench.invalid/"

PAGE = """<!doctype html><html><head><link rel="stylesheet" href="run_table.css"></head>
<body style="width: 1200px"><div id="root"></div><script type="module">
const rows = ROWS;
const handlers = {};
const state = {
  rows, columns: ['config.lr', 'config.batch', 'summary.loss', 'summary.acc'], selected_ids: [],
};
const model = {
  get: k => state[k], set: (k, v) => { state[k] = v; }, save_changes() {},
  on: (e, f) => { handlers[e] = f; }, off() {},
};
const t0 = performance.now();
const { default: widget } = await import('./run_table.js');
widget.render({ model, el: document.getElementById('root') });
await new Promise(requestAnimationFrame);
window.firstRender = performance.now() - t0;
window.done = true;
</script></body></html>"""


def make_rows(n: int) -> list[dict]:
    rng = random.Random(1)
    states = ["finished", "running", "failed", "crashed"]
    return [
        {
            "id": f"run-{i:05d}",
            "project": "bench",
            "name": f"sweep-{i:05d}",
            "state": rng.choice(states),
            "tags": rng.sample(["a", "b", "gpu", "sweep", "baseline"], 2),
            "config": {"lr": 10 ** rng.uniform(-5, -1), "batch": rng.choice([32, 64, 128])},
            "summary": {"loss": rng.random(), "acc": rng.random()},
            "created_at": f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
            "finished_at": None,
        }
        for i in range(n)
    ]


def timed(page, action: str) -> float:
    """Milliseconds from running `action` (JS) to the next painted frame."""
    return page.evaluate(
        f"async () => {{ const t = performance.now(); {action}; "
        "await new Promise(requestAnimationFrame); return performance.now() - t; }"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    html = PAGE.replace("ROWS", json.dumps(make_rows(args.rows)))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        files = {"run_table.js": "text/javascript", "run_table.css": "text/css"}
        page.route(
            f"{ORIGIN}*",
            lambda route: route.fulfill(
                body=html
                if route.request.url == f"{ORIGIN}index.html"
                else (STATIC / route.request.url.removeprefix(ORIGIN)).read_text(),
                content_type=files.get(route.request.url.removeprefix(ORIGIN), "text/html"),
            ),
        )
        page.goto(f"{ORIGIN}index.html")
        page.wait_for_function("window.done === true", timeout=60_000)
        first = page.evaluate("window.firstRender")
        dom_rows = page.locator(".wl-rt-row").count()
        sort = timed(page, "document.querySelector(\"[data-column='summary.loss']\").click()")
        sort_again = timed(page, "document.querySelector(\"[data-column='summary.loss']\").click()")
        filt = timed(
            page,
            "const f = document.querySelector('.wl-rt-filter'); "
            "f.value = 'state:running config.lr>=0.001'; f.dispatchEvent(new Event('input'))",
        )
        timed(
            page,
            "const f = document.querySelector('.wl-rt-filter'); f.value = ''; "
            "f.dispatchEvent(new Event('input'))",
        )
        frames = page.evaluate("""async () => {
            const v = document.querySelector('.wl-rt-viewport'); const times = [];
            for (let i = 0; i < 120; i++) {
              const t = performance.now(); v.scrollTop += 250;
              await new Promise(requestAnimationFrame); await new Promise(requestAnimationFrame);
              times.push(performance.now() - t);
            }
            times.sort((a, b) => a - b);
            const rows = document.querySelectorAll('.wl-rt-row').length;
            return { p50: times[60], p95: times[113], rows };
        }""")
        browser.close()
    print(f"rows: {args.rows:,} (DOM rows rendered: {dom_rows}, while scrolling: {frames['rows']})")
    print(f"first render (import + render + paint): {first:7.1f} ms")
    print(f"sort by summary.loss:                   {sort:7.1f} ms (reverse: {sort_again:.1f} ms)")
    print(f"filter 'state:running config.lr>=0.001': {filt:6.1f} ms")
    print(f"scroll step (250 px, two frames) p50/p95: {frames['p50']:.1f} / {frames['p95']:.1f} ms")


if __name__ == "__main__":
    main()
