"""``jupyter nbconvert --to wanllm_html``: an HTML page whose stored widgets draw without a CDN.

The HTML widget manager loads every third-party widget library (bqplot,
bqscales, …) from a public CDN at ``<name>@<version range>/dist/index.js``.
That breaks an exported chart for good when the library's front end is not
published at that range (bqplot 0.13 asks for ``bqplot@^0.6.1``; npm has no
0.6) and whenever the reader is offline. This exporter embeds, as ``data:``
URLs registered with require.js, the installed front end (the AMD build under
Jupyter's ``nbextensions`` folders) of each library the notebook's widget state
uses; the widget manager asks require.js for a module by name before it tries
the CDN, so those libraries never touch the network.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_path
from nbconvert.exporters import HTMLExporter
from nbformat import NotebookNode
from traitlets import default

WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
# Bundled into the HTML widget manager itself.
BUILTIN_MODULES = frozenset(
    {"@jupyter-widgets/base", "@jupyter-widgets/controls", "@jupyter-widgets/output"}
)
_AMD_START = re.compile(r"\A(?:\s|/\*.*?\*/|//[^\n]*\n)*define\(", re.DOTALL)


def _interactive_only(model: dict[str, Any]) -> bool:
    return bool(model.get("state", {}).get("interactive_only"))


def drop_interactive_only(nb: NotebookNode) -> NotebookNode:
    """A copy of ``nb`` without the widgets that only work live (``interactive_only``
    in their state: the charts' hover/zoom overlay), nor the references to them."""
    nb = copy.deepcopy(nb)
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE_MIME, {}).get("state", {})
    gone = {f"IPY_MODEL_{k}" for k, m in state.items() if _interactive_only(m)}
    for key in [k for k in state if f"IPY_MODEL_{k}" in gone]:
        del state[key]
    for model in state.values():
        children = model.get("state", {}).get("children")
        if isinstance(children, list):
            model["state"]["children"] = [c for c in children if c not in gone]
    return nb


def widget_modules(nb: NotebookNode) -> set[str]:
    """The front-end modules the notebook's stored widget state needs."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE_MIME, {}).get("state", {})
    names: set[str] = set()
    for model in state.values():
        if _interactive_only(model):
            continue
        names.add(model.get("model_module", ""))
        names.add(model.get("state", {}).get("_view_module") or "")
    return {n for n in names if n and n not in BUILTIN_MODULES}


def installed_amd_module(name: str, search: Iterable[str] | None = None) -> bytes | None:
    """The installed AMD build of widget library ``name``, or None."""
    for folder in jupyter_path("nbextensions") if search is None else search:
        path = Path(folder, name, "index.js")
        if path.is_file():
            source = path.read_bytes()
            head = source[:4096].decode("utf-8", "replace")
            return source if _AMD_START.match(head) else None
    return None


def module_urls(names: Iterable[str]) -> dict[str, str]:
    """require.js ``paths`` for every module with an installed AMD build."""
    urls = {}
    for name in sorted(names):
        source = installed_amd_module(name)
        if source is not None:
            urls[name] = "data:text/javascript;base64," + base64.b64encode(source).decode()
    return urls


class WanllmHTMLExporter(HTMLExporter):
    """JupyterLab's HTML export with the notebook's widget libraries inlined."""

    export_from_notebook = "HTML with widgets (wanllm)"

    @default("template_name")
    def _template_name_default(self) -> str:
        return "wanllm_html"

    @default("extra_template_basedirs")
    def _extra_template_basedirs_default(self) -> list[str]:
        return [str(Path(__file__).parent / "nbconvert_templates")]

    # nbconvert annotates Exporter.from_notebook_node as returning a NotebookNode; its
    # template exporters (HTMLExporter, this one's base) return the rendered text.
    def from_notebook_node(  # type: ignore[override]
        self, nb: NotebookNode, resources: dict[str, Any] | None = None, **kw: Any
    ) -> tuple[str, dict[str, Any]]:
        resources = dict(resources or {})
        nb = drop_interactive_only(nb)
        names = widget_modules(nb)
        resources["widget_module_urls"] = urls = module_urls(names)
        for name in sorted(names - urls.keys()):
            self.log.warning("widget library %r has no installed AMD build; left to the CDN", name)
        return super().from_notebook_node(nb, resources, **kw)
