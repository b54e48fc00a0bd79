"""A real hub for tests: the dev IAM (npm oidc-provider), JupyterHub with
configurable-http-proxy and local user servers, all on 127.0.0.1 ports of
their own; stopped (user servers included) when the test is done."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from mlaas4hep_hub.cli import dev_config
from mlaas4hep_hub.devidp import DevIdP

from ..browser import free_port
from ..servers.tls_ca import CAFiles

ROOT = Path(__file__).resolve().parents[2]
HUB_CLIENT_SECRET = "hub-client-secret-3b9f1e27c4"
AGENT_CLIENT = {"client_id": "oidc-agent", "client_secret": "agent-secret-71d0c2a9",
                "redirect_uris": ["http://127.0.0.1:4242/"]}  # never contacted


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), children first."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class Hub:
    """A running hub and its dev IAM."""

    url: str
    idp: DevIdP
    state: Path
    config: Path
    log: Path
    process: subprocess.Popen
    docker_host: str | None = None
    ca_file: Path | None = None

    def start(self) -> None:
        """(Re)start the hub process on the same state and wait until it answers."""
        env = {**os.environ, "MLAAS4HEP_HUB_CONFIG": str(self.config)}
        if self.docker_host:
            env["DOCKER_HOST"] = self.docker_host
        if self.ca_file:  # the hub process alone trusts the test CA (its IAM's certificate)
            env["SSL_CERT_FILE"] = str(self.ca_file)
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).parent / "jupyterhub"), "-f",
                 str(ROOT / "hub" / "jupyterhub_config.py")],
                cwd=self.state, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + 120  # a loaded 2-core machine can take over a minute
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hub exited:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/hub/api/", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"hub did not answer:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Stop the hub (SIGTERM, as Ctrl-C would); if it hangs, kill it and every process
        it started (the proxy and services run in sessions of their own)."""
        if self.process.poll() is None:
            children = descendants(self.process.pid)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(90)
            except subprocess.TimeoutExpired:
                for pid in [self.process.pid, *children, *descendants(self.process.pid)]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.process.wait()

    def hub_token(self, iam_access_token: str) -> requests.Response:
        """POST the IAM token to the auth service's /hub-token."""
        return requests.post(f"{self.url}/services/auth/hub-token", timeout=30,
                             headers={"Authorization": f"Bearer {iam_access_token}"})


def examples_dir(tmp: Path) -> Path:
    """Notebooks and a small file set, like `make up` puts in every home."""
    examples = tmp / "examples"
    shutil.copytree(ROOT / "extension" / "notebooks", examples)
    for name in ("model.py", "params.json", "preproc.json"):
        shutil.copy(ROOT / "mlaas4hep" / "examples" / name, examples / name)
    (examples / "samples").mkdir()
    shutil.copy(ROOT / "tests" / "data" / "uproot-HZZ.root", examples / "samples")
    return examples


@contextlib.contextmanager
def hub_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Hub]]:
    """``make(token_ttl=..., cleanup_servers=..., docker_host=..., ca=...)`` starts a hub; all
    stop at the end. With ``ca`` (a test CA) the dev IAM serves HTTPS with its certificate (an
    ``https://`` issuer, as storage token plugins require), and the hub process and the user
    servers (``X509_CERT_DIR``, for the XRootD client) trust it."""
    started: list[Hub] = []

    def make(token_ttl: int = 3600, cleanup_servers: bool = True,
             docker_host: str | None = None, ca: CAFiles | None = None) -> Hub:
        tmp = tmp_path_factory.mktemp("hub")
        port = free_port()
        hub_client = {"client_id": "mlaas4hep-hub", "client_secret": HUB_CLIENT_SECRET,
                      "redirect_uris": [f"http://127.0.0.1:{port}/hub/oauth_callback"]}
        tls = {"tls_cert": ca.cert, "tls_key": ca.key, "tls_ca": ca.ca} if ca else {}
        idp = DevIdP(tmp / "idp", clients=[hub_client, AGENT_CLIENT],
                     access_token_ttl=token_ttl, **tls).start()
        (tmp / "iam-client-secret").write_text(HUB_CLIENT_SECRET)
        (tmp / "iam-client-secret").chmod(0o600)
        cfg = dev_config(tmp, idp.issuer, port, examples_dir(tmp),
                         token_poll=max(2, min(30, token_ttl // 12)),
                         kind="docker" if docker_host else "local")
        cfg["hub"].update(cleanup_servers=cleanup_servers,
                          hub_bind_url=f"http://127.0.0.1:{free_port()}",
                          proxy_api_url=f"http://127.0.0.1:{free_port()}")
        cfg["iam"].update(auth_refresh_age=2, token_refresh_margin=max(10, token_ttl // 2))
        if ca:
            cfg["spawner"]["environment"] = {"X509_CERT_DIR": str(ca.cadir)}
        cfg["services"] = {f"{name}_port": free_port() for name in ("auth", "inference", "submit")}
        config = tmp / "hub.yaml"
        config.write_text(yaml.safe_dump(cfg))
        hub = Hub(f"http://127.0.0.1:{port}", idp, tmp, config, tmp / "hub.log",
                  subprocess.Popen(["true"]), docker_host, ca.ca if ca else None)
        started.append(hub)
        hub.start()
        return hub

    yield make
    for hub in started:
        hub.stop()
        cfg = yaml.safe_load(hub.config.read_text())
        if not cfg["hub"]["cleanup_servers"]:  # servers kept on purpose: let the hub stop them
            cfg["hub"]["cleanup_servers"] = True
            hub.config.write_text(yaml.safe_dump(cfg))
            hub.start()
            hub.stop()
        hub.idp.stop()


@pytest.fixture
def make_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Hub]]:
    """Factory: ``make_hub(token_ttl=..., cleanup_servers=...)`` starts a hub."""
    with hub_factory(tmp_path_factory) as make:
        yield make


def sign_in(browser: Any, hub: Hub, user: str, password: str) -> Any:
    """Open the hub, click 'Sign in with IAM', log in and consent; return the page."""
    # a dev IAM over TLS has a test CA's certificate, which chromium is not told about
    page = browser.new_page(ignore_https_errors=hub.ca_file is not None)
    page.goto(f"{hub.url}/hub/login")
    page.get_by_text("Sign in with IAM").click()
    page.fill("input[name=login]", user)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Authorize").click()
    return page
