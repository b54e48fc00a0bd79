"""The hub's services stop at once on SIGINT (how the hub stops them) and on SIGTERM
(docker stop, systemd), even when started with SIGINT ignored (a background job); the
processes an inference service forks stop with it; so does ``mlaas4hep-hub dev`` (``make
up``) with the hub, the services and the dev IAM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ..browser import free_port

OPTIONS = {"auth_service": [], "inference_service": ["--models-dir={tmp}/models"],
           "inference_service --processes=2": ["--models-dir={tmp}/models", "--processes=2"],
           "submit_service": ["--jobs-dir={tmp}/jobs"]}
"""Each service's options; the inference service also with two processes."""


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux /proc)."""
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def all_end(pids: list[int], timeout: float = 10) -> bool:
    """True once every process of ``pids`` has ended (False after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not all(ended(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def ended(pid: int) -> bool:
    """True when process ``pid`` is gone (or a zombie waiting to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("service", sorted(OPTIONS))
def test_service_stops_on_signal(tmp_path: Path, service: str, signum: int) -> None:
    module = service.split()[0]
    port = free_port()
    env = {**os.environ, "JUPYTERHUB_API_TOKEN": "unused", "JUPYTERHUB_SERVICE_PREFIX":
           f"/services/{module}/", "JUPYTERHUB_API_URL": f"http://127.0.0.1:{free_port()}/hub/api",
           "JUPYTERHUB_CLIENT_ID": f"service-{module}",
           "JUPYTERHUB_OAUTH_CALLBACK_URL": f"/services/{module}/oauth_callback"}
    unused = f"http://127.0.0.1:{free_port()}"  # never contacted: no token is checked
    command = [sys.executable, "-m", f"mlaas4hep_hub.{module}", f"--issuer={unused}",
               f"--jwks-uri={unused}/jwk", f"--port={port}",
               *(o.format(tmp=tmp_path) for o in OPTIONS[service])]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, preexec_fn=ignore_sigint)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read()
            try:
                requests.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        else:
            pytest.fail(f"{module} did not listen on port {port}")
        forked = children(process.pid)
        assert len(forked) == (1 if "--processes=2" in service else 0)
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
        assert all_end(forked)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_dev_hub_stops_everything_on_signal(tmp_path: Path, signum: int) -> None:
    """Started as a background job (SIGINT ignored): the hub it starts used to inherit the
    'ignore', so SIGTERM left ``dev`` waiting 30 s and ending in a traceback."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "mlaas4hep-hub"), "dev",
               f"--state-dir={tmp_path / 'dev'}", f"--port={port}", f"--idp-port={free_port()}"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, preexec_fn=ignore_sigint)
    started: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if requests.get(f"http://127.0.0.1:{port}/hub/api/", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"the dev hub did not answer on port {port} (exit {process.poll()})")
        started += descendants(process.pid)
        assert len(started) >= 3  # the dev IAM, JupyterHub, the proxy, the services
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=20)
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr
        assert all_end(started)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in started:  # what a failed stop left running (it holds ports)
            if not ended(pid):
                os.kill(pid, signal.SIGKILL)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``."""
    found = children(pid)
    for child in list(found):
        found += descendants(child)
    return found
