"""Colab detection: its custom widget manager is enabled once, before our first widget."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from wanllm_jupyter._columns import WanllmWarning
from wanllm_jupyter.widgets import _frontends


def fake_colab(monkeypatch: pytest.MonkeyPatch, enable: object) -> None:
    """Put a ``google.colab.output`` with ``enable_custom_widget_manager`` in ``sys.modules``."""
    google, colab, output = (types.ModuleType(n) for n in ("google", "google.colab", "output"))
    output.enable_custom_widget_manager = enable  # type: ignore[attr-defined]
    colab.output = output  # type: ignore[attr-defined]
    google.colab = colab  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    monkeypatch.setattr(_frontends, "_prepared", False)


def test_outside_colab_nothing_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(_frontends, "_prepared", False)
    assert not _frontends.in_colab()
    assert _frontends.prepare_frontend() is False


def test_colab_widget_manager_enabled_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[None] = []
    fake_colab(monkeypatch, lambda: calls.append(None))
    assert _frontends.in_colab()
    assert _frontends.prepare_frontend() is True
    assert _frontends.prepare_frontend() is False
    assert len(calls) == 1


def test_colab_failure_warns_and_does_not_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise RuntimeError("no widget manager here")

    fake_colab(monkeypatch, broken)
    with pytest.warns(WanllmWarning, match="no widget manager here"):
        assert _frontends.prepare_frontend() is False
    assert _frontends.prepare_frontend() is False  # tried once only


def test_importing_the_widgets_enables_it_before_any_widget() -> None:
    """A fresh interpreter in a (fake) Colab: importing the widgets, as every widget factory and
    ``Run`` display does first, enables the manager exactly once."""
    script = textwrap.dedent(
        """
        import sys, types
        calls = []
        google, colab, output = (types.ModuleType(n) for n in ("google", "google.colab", "o"))
        output.enable_custom_widget_manager = lambda: calls.append(1)
        colab.output, google.colab = output, colab
        sys.modules.update({"google": google, "google.colab": colab, "google.colab.output": output})
        import wanllm_jupyter as wl
        assert calls == [], calls  # importing the client alone displays nothing
        import wanllm_jupyter.widgets
        from wanllm_jupyter.widgets import chart
        print(len(calls))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1", out.stderr


def test_anywidget_assets_are_inline() -> None:
    """Our anywidget ESM travels in the widget state (no CDN or server fetch): Colab, VS Code
    and exported HTML get it with the widget; the bundles import nothing by URL."""
    from wanllm_jupyter.widgets._overlay import ChartOverlay

    static = Path(_frontends.__file__).parents[1] / "static"
    esm = ChartOverlay().get_state()["_esm"]
    assert esm == (static / "chart_overlay.js").read_text()
    bundles = sorted(static.glob("*.js"))
    assert {"chart_overlay.js", "run_table.js"} <= {b.name for b in bundles}
    for bundle in bundles:
        assert not re.search(r"""(from|import\()\s*["']https?:""", bundle.read_text()), bundle


def test_widget_messages_keep_the_subshell_the_front_end_chose() -> None:
    """ipykernel 7 sends a comm's incoming messages to the subshell that last sent on it (the
    main shell for a widget made in a cell); the chart's x scale keeps the front end's choice.
    The browser test is tests/ui/test_zoom_while_running.py."""
    from ipykernel.comm.comm import BaseComm

    comm = BaseComm(target_name="jupyter.widget", comm_id="scale", primary=False)
    comm._reply_subshell_id = None  # last sent from a cell on the main shell
    assert comm._reply_subshell_for({"method": "update"}, "subshell-1") is None
    _frontends.follow_frontend_subshell(types.SimpleNamespace(comm=comm))
    assert comm._reply_subshell_for({"method": "update"}, "subshell-1") == "subshell-1"
    assert comm._reply_subshell_for({"method": "update"}, None) is None
    _frontends.follow_frontend_subshell(types.SimpleNamespace(comm=None))  # a closed widget
