"""Run metadata gathered at ``init``: git state, host, Python and package versions, notebook."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from typing import Any

GIT_TIMEOUT = 2.0
KEY_PACKAGES = (
    "numpy",
    "pandas",
    "torch",
    "jax",
    "tensorflow",
    "scikit-learn",
    "transformers",
    "wanllm-jupyter",
)


def _git(args: list[str], cwd: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_info(cwd: str | None = None) -> dict[str, Any]:
    """``{"branch", "commit", "dirty", "remote"}`` of the repository holding ``cwd``
    (empty outside one)."""
    cwd = cwd or os.getcwd()
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return {}
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return {
        "branch": _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd),
        "commit": commit,
        "dirty": bool(status) if status is not None else None,
        "remote": _git(["config", "--get", "remote.origin.url"], cwd),
    }


def package_versions() -> dict[str, str]:
    """Versions of the key ML packages that are installed."""
    from importlib import metadata as importlib_metadata

    out = {}
    for name in KEY_PACKAGES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return out


def notebook_path() -> str | None:
    """The notebook this kernel runs (jupyter_server sets ``JPY_SESSION_NAME``)."""
    return os.environ.get("JPY_SESSION_NAME") or None


def run_metadata() -> dict[str, Any]:
    """What ``Run.metadata`` records at creation (cheap: before the first point)."""
    meta: dict[str, Any] = {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "pid": os.getpid(),
        "argv": sys.argv[:20],
    }
    nb = notebook_path()
    if nb:
        meta["notebook"] = nb
    return meta


def environment_metadata() -> dict[str, Any]:
    """The OS and package versions (tens of ms: recorded by a patch the sender sends
    after the run's first points, see ``Sender(deferred=...)``)."""
    return {"platform": platform.platform(), "packages": package_versions()}


def hostname() -> str:
    return socket.gethostname()
