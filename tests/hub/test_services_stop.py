"""The hub's services stop at once on SIGINT (how the hub stops them) and on SIGTERM
(docker stop, systemd), even when started with SIGINT ignored (a background job); the
processes an inference service forks stop with it."""

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
        deadline = time.monotonic() + 10
        while not all(ended(pid) for pid in forked) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(ended(pid) for pid in forked)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
