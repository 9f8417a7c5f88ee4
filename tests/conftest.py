"""Shared helpers: running the ``trainyard`` command in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def run_trainyard(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m trainyard ARGS`` in a new process, as a user would run it."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "trainyard", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or REPO,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def installed_plugins(tmp_path_factory) -> Path:
    """The example and broken plugin packages, installed for real into one directory."""
    target = tmp_path_factory.mktemp("site")
    for package in ("example_plugin", "broken_plugins"):
        build_dir = tmp_path_factory.mktemp(f"build-{package}")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
             "--target", str(target), str(FIXTURES / package)],
            check=True,
            cwd=build_dir,
            env={**os.environ, "PIP_NO_INPUT": "1"},
        )
    return target
