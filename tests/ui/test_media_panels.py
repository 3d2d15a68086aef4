"""Issue 13 acceptance (widgets): in real JupyterLab and Chromium, a cell logs images,
histograms and a table in a loop while the image, histogram and table panels shown
above it grow live; captions, the run name and table cells are markup that stays
text (``window.__pwned`` stays undefined). Screenshots: docs/media-panels-light.png
and docs/media-panels-dark.png."""

from __future__ import annotations

import time
from typing import Any

import nbformat
import pytest

from tests.browser import accept_kernel_dialog, choose_theme, run_all, write_notebook
from tests.hostile_names import PWN

pytestmark = pytest.mark.browser
STEPS = 30
SETUP = f"""
import time
import numpy as np
import pandas as pd
import wanllm_jupyter as wl
from IPython.display import display

PWN = {PWN!r}
run = wl.init(project="media-ui", name=PWN + "run", system_metrics=False)
yy, xx = np.mgrid[:28, :28]

def digit(step, k):
    # a ring and a bar, like a hand-drawn 0 or 1, moving with the step
    ring = np.abs(np.hypot(yy - 14, xx - 14 - (k - 1) * 3) - (5 + (step + k) % 4)) < 1.6
    bar = (np.abs(xx - 6 - (step % 16)) < 1.5) & (yy > 4) & (yy < 24)
    return ((ring | bar) * 255).astype(np.uint8)
"""
PANELS = """
display(run.images("digits"), run.distributions("weights"), run.table_panel("predictions"))
"""
LOOP = f"""
rng = np.random.default_rng(0)
for step in range({STEPS}):
    preds = pd.DataFrame({{
        "label": [PWN + "cat", "dog", "bird", "frog"][: 2 + step % 3],
        "p": rng.random(2 + step % 3).round(3),
    }})
    wl.log({{
        "loss": 1 / (step + 1),
        "digits": [wl.Image(digit(step, k), caption=f"{{PWN}} #{{k}}") for k in range(3)],
        "weights": wl.Histogram(rng.normal(step * 0.1, 1 + step * 0.03, 4000), num_bins=40),
        "predictions": wl.Table(dataframe=preds),
    }}, step=step)
    time.sleep(0.4)
wl.finish()
"""
STATE_JS = """
() => {
  const out = [...document.querySelectorAll('.jp-OutputArea')][1];
  if (!out) return null;
  const readout = sel => out.querySelector(sel + ' .widget-readout')?.textContent ?? '';
  return {
    images: out.querySelectorAll('.wl-media-image .wl-tile img').length,
    imageStep: readout('.wl-media-image'),
    heat: out.querySelectorAll('.wl-media-histogram image').length,
    histStep: readout('.wl-media-histogram'),
    rows: out.querySelectorAll('.wl-media-table .wl-rt-row').length,
    tableStep: out.querySelector('.wl-media-table select')?.selectedOptions[0]?.textContent ?? '',
    running: [...document.querySelectorAll('.jp-InputPrompt')]
      .some(p => p.textContent.includes('*')),
  };
}
"""
INJECTED_JS = """
() => ({
  pwned: typeof window.__pwned,
  onerror: [...document.querySelectorAll('*')].filter(e => e.hasAttribute('onerror')).length,
})
"""


def poll(page: Any, check: Any, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = page.evaluate(STATE_JS) or {}
        if state and check(state):
            return state
        if time.monotonic() > deadline:
            outputs = page.locator(".jp-OutputArea").all_inner_texts()
            raise AssertionError(f"timed out; last state {state}; outputs {outputs}")
        time.sleep(0.2)


def step_of(text: str) -> int:
    words = text.split()  # the picker's "step 3 · 4 rows", or the slider's "3"
    return int(words[1]) if words[:1] == ["step"] else int(text or -1)


def test_media_panels_grow_live_and_draw_markup_as_text(lab: Any, screenshot: Any) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c.strip()) for c in (SETUP, PANELS, LOOP)]
    write_notebook(nb, lab.root / "media.ipynb")
    page = lab.page("lab/tree/media.ipynb?reset", viewport=(1100, 2600))
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=30_000)
    accept_kernel_dialog(page)
    run_all(page)

    first = poll(page, lambda s: s["images"] >= 3 and s["heat"] and s["rows"] and s["running"])
    later = poll(
        page,
        lambda s: (
            step_of(s["imageStep"]) >= step_of(first["imageStep"]) + 3
            and step_of(s["histStep"]) > step_of(first["histStep"])
            and step_of(s["tableStep"]) > step_of(first["tableStep"])
        ),
    )
    assert later["running"], f"the logging cell ended before the panels grew: {later}"
    assert later["images"] == 3  # the latest step's three images
    done = poll(page, lambda s: not s["running"], timeout=90)
    done = poll(page, lambda s: step_of(s["imageStep"]) == STEPS - 1, timeout=20)
    assert step_of(done["histStep"]) == STEPS - 1 and step_of(done["tableStep"]) == STEPS - 1

    page.wait_for_timeout(500)  # an onerror would fire once the image request failed
    assert page.evaluate(INJECTED_JS) == {"pwned": "undefined", "onerror": 0}
    output = page.locator(".jp-OutputArea").nth(1)
    text = output.inner_text()
    assert f"{PWN} #0" in text and f"{PWN}cat" in text
    output.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    screenshot(output, "media-panels-light", docs=True)
    choose_theme(page, "JupyterLab Dark")
    page.wait_for_timeout(800)
    screenshot(output, "media-panels-dark", docs=True)
