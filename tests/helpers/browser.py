"""Headless Chromium for the UI tests: Debian's chromium driven by playwright-core (npm, cached outside the
repository under the kind bed's cache root). ``playwright_env`` skips the test, saying why, when either is
missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PLAYWRIGHT_CORE = "1.65.1"


def playwright_env(cache_root: Path) -> dict[str, str]:
    """The environment a driver script (``node DRIVER.cjs``) needs: NODE_PATH and CHROMIUM."""
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; scripts/test does where it can)")
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("no node and npm to run playwright-core (apt-get install nodejs npm)")
    prefix = cache_root / "node" / f"playwright-core-{PLAYWRIGHT_CORE}"
    if not (prefix / "node_modules" / "playwright-core" / "package.json").is_file():
        proc = subprocess.run(
            [
                "npm",
                "install",
                "--prefix",
                str(prefix),
                "--no-audit",
                "--no-fund",
                "--silent",
                f"playwright-core@{PLAYWRIGHT_CORE}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            pytest.fail(f"npm install playwright-core@{PLAYWRIGHT_CORE} failed: {proc.stderr.strip()[-2000:]}")
    return dict(os.environ, NODE_PATH=str(prefix / "node_modules"), CHROMIUM=chromium)
