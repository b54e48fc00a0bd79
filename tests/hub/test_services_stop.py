"""The hub's services stop at once on SIGINT (how the hub stops them) and on SIGTERM
(docker stop, systemd), even when started with SIGINT ignored (a background job)."""

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
           "submit_service": ["--jobs-dir={tmp}/jobs"]}


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("module", sorted(OPTIONS))
def test_service_stops_on_signal(tmp_path: Path, module: str, signum: int) -> None:
    port = free_port()
    env = {**os.environ, "JUPYTERHUB_API_TOKEN": "unused", "JUPYTERHUB_SERVICE_PREFIX":
           f"/services/{module}/", "JUPYTERHUB_API_URL": f"http://127.0.0.1:{free_port()}/hub/api",
           "JUPYTERHUB_CLIENT_ID": f"service-{module}",
           "JUPYTERHUB_OAUTH_CALLBACK_URL": f"/services/{module}/oauth_callback"}
    unused = f"http://127.0.0.1:{free_port()}"  # never contacted: no token is checked
    command = [sys.executable, "-m", f"mlaas4hep_hub.{module}", f"--issuer={unused}",
               f"--jwks-uri={unused}/jwk", f"--port={port}",
               *(o.format(tmp=tmp_path) for o in OPTIONS[module])]
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
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
