"""Real JupyterLab in Debian's headless Chromium, driven by Playwright, against a sandbox.

Playwright's own browser download is not available here, so the tests use ``/usr/bin/chromium``
(``.ci/run`` installs it) and are skipped without it. The Lab server gets a copy of notebooks/
(Lab autosaves), empty settings and workspaces, and its own sandbox on block 30. Chromium sends
everything but loopback to a dead proxy: nothing reaches the internet.

Screenshots land in ``test-artifacts/browser/`` (or ``$EGRESS_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browser_support import CHROMIUM, REPO, artifacts

BLOCK = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    runs: Path
    log: Path
    box: Any  # the Sandbox

    def notebook_url(self, name: str) -> str:
        return f"{self.url}lab/tree/{name}?token={self.token}"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Lab]:
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    from sandbox_env import sandbox_home

    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "notebooks"
    shutil.copytree(REPO / "notebooks", root, ignore=shutil.ignore_patterns("conftest.py"))
    runs = tmp / "runs"
    # A test module may name a block of its own: its sandbox's world differs from the others'.
    with sandbox_home(tmp / "sandbox", getattr(request.module, "BLOCK", BLOCK)) as box:
        port, token = _free_port(), secrets.token_hex(16)
        env = {
            **os.environ,
            "EGRESS_RUNS_DIR": str(runs),
            "JUPYTER_CONFIG_DIR": str(tmp / "config"),
            "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        }
        env.pop("EGRESS_WIDGETS", None)
        # No news prompt over the notebook (and no fetch of it).
        notification = tmp / "settings" / "@jupyterlab" / "apputils-extension"
        notification.mkdir(parents=True)
        (notification / "notification.jupyterlab-settings").write_text(
            '{"fetchNews": "false", "checkForUpdates": false}'
        )
        log = tmp / "lab.log"
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.user_settings_dir={tmp / 'settings'}",
            f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",  # no PyPI lookups
            "--allow-root",
        ]
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/"
        try:
            _wait_until_up(url, token, proc, log)
            yield Lab(url, token, root, runs, log, box)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
            shutil.copy(log, artifacts() / "lab.log")


def _wait_until_up(url: str, token: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"jupyter lab exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}api/status?token={token}", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"jupyter lab did not answer within 60 s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def page(lab: Lab) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",  # CI runs as root
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--no-first-run",
                # Everything but loopback goes to a closed port: no internet, ever.
                "--proxy-server=http://127.0.0.1:9",
            ],
        )
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = context.new_page()
        pg.set_default_timeout(30_000)
        try:
            yield pg
        finally:
            pg.screenshot(path=str(artifacts() / "last-page.png"), full_page=True)
            context.close()
            browser.close()
