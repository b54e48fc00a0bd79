"""The Ansible role converged for real against this machine (connection local) on the tests'
private Docker engine, with the dev OpenID provider as IAM: the hub answers on its TLS port,
alice signs in through chromium and gets a user container, a job she submits with her IAM
token runs in a container of the user image and gives its results, a second run changes
nothing, --check passes, and no secret shows in container environments, the user container
or logs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from mlaas4hep_hub.devidp import DevIdP

from ..browser import free_port, screenshot
from ..docker.dockerd import BuiltImages, DockerDaemon
from ..hub.conftest import AGENT_CLIENT, sign_in
from ..hub.oidc_client import login_tokens
from ..services.test_services_hub import call, wait_for_job
from ..services.test_submit_docker import sample_job
from .playbook import PlaybookRun, playbook

# the first test of a session may also wait for the image builds
pytestmark = pytest.mark.timeout(2400)

CLIENT_SECRET = "deploy-client-secret-5e1c07b9a2"
HUB = "mlaas4hep-hub-test"
GENERATED = ("jupyterhub_cookie_secret", "crypt_key", "proxy_token")


def converge_vars(tmp: Path, idp: DevIdP, port: int, dockerd: DockerDaemon,
                  images: BuiltImages) -> Path:
    """Extra variables for site.yml (0600: it holds the client secret)."""
    values = {
        "mlaas4hep_hub_public_host": "127.0.0.1", "mlaas4hep_hub_bind_address": "127.0.0.1",
        "mlaas4hep_hub_https_port": port, "mlaas4hep_hub_hub_api_port": free_port(),
        "mlaas4hep_hub_proxy_api_port": free_port(), "mlaas4hep_hub_auth_port": free_port(),
        "mlaas4hep_hub_base_dir": str(tmp / "srv"),
        "mlaas4hep_hub_iam_issuer": idp.issuer, "mlaas4hep_hub_iam_client_id": "mlaas4hep-hub",
        "mlaas4hep_hub_iam_client_secret": CLIENT_SECRET,
        "mlaas4hep_hub_install_docker": False, "mlaas4hep_hub_docker_host": dockerd.host,
        "mlaas4hep_hub_images_source": "present", "mlaas4hep_hub_image": images.hub,
        "mlaas4hep_hub_singleuser_image": images.singleuser,
        "mlaas4hep_hub_container_name": HUB, "mlaas4hep_hub_memory_choices": ["2G"],
        "mlaas4hep_hub_cpu_choices": [1],
    }
    path = tmp / "vars.json"
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return path


def wait_for_token(dockerd: DockerDaemon, container: str, timeout: float = 90) -> str:
    """The content of $BEARER_TOKEN_FILE in ``container`` once the token keeper wrote it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = dockerd.docker("exec", container, "sh", "-c", 'cat "$BEARER_TOKEN_FILE"',
                                check=False)
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip()
        time.sleep(2)
    raise AssertionError(f"no token file in {container} after {timeout:.0f} s")


def assert_ok(run: PlaybookRun, what: str, dockerd: DockerDaemon) -> None:
    """The run succeeded; else its output and the hub container's log tail."""
    if run.returncode == 0 and run.count("failed") == 0:
        return
    logs = dockerd.docker("logs", "--tail", "80", HUB, check=False)
    raise AssertionError(f"{what}:\n{run.output[-6000:]}\nhub container log:\n"
                         f"{logs.stdout}{logs.stderr}")


def submit_a_job(hub: SimpleNamespace, idp: DevIdP, dockerd: DockerDaemon) -> None:
    """alice's job (samples made in her home) runs to the end and its results come back: the
    submit service in the hub container hands the job folder to the host's Docker engine by
    path, which the role mounts at the same path inside."""
    dockerd.docker("exec", "-w", "/home/jovyan", "jupyter-alice", "mlaas4hep", "make-sample",
                   "--out-dir", "samples", "--events", "2000")
    token = login_tokens(idp.issuer, AGENT_CLIENT, "alice", "alice-pass")["access_token"]
    body = sample_job("deployed", chunk_size=2000, memory="1G", cpus=1)
    submitted = call(hub, "POST", "submit", "submit", token, json=body)
    if submitted.status_code != 201:
        logs = dockerd.docker("logs", "--tail", "60", HUB, check=False)
        raise AssertionError(f"submit: {submitted.status_code} {submitted.text}\nhub container "
                             f"log:\n{logs.stdout}{logs.stderr}")
    assert submitted.json()["runner"] == "docker", submitted.text
    job = submitted.json()["id"]
    record = wait_for_job(hub, token, job)
    log = call(hub, "GET", "submit", f"jobs/{job}/log", token).text
    assert record["state"] == "finished" and record["exit_code"] == 0, (record, log[-3000:])
    results = call(hub, "GET", "submit", f"jobs/{job}/results", token)
    assert results.status_code == 200 and len(results.content) > 0, results.text[:500]


def test_converge_sign_in_idempotence_and_secrets(tmp_path: Path, dockerd: DockerDaemon,
                                                  built_images: BuiltImages, browser,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    client = {"client_id": "mlaas4hep-hub", "client_secret": CLIENT_SECRET,
              "redirect_uris": [f"https://127.0.0.1:{port}/hub/oauth_callback"]}
    idp = DevIdP(tmp_path / "idp", clients=[client, AGENT_CLIENT]).start()
    extra = f"@{converge_vars(tmp_path, idp, port, dockerd, built_images)}"
    home = tmp_path / "ansible-home"
    try:
        start = time.monotonic()
        first = playbook("-e", extra, home=home)
        assert_ok(first, "first run", dockerd)
        assert "MLaaS4HEP Hub is up at https://127.0.0.1:" in first.output
        print(f"first converge: {time.monotonic() - start:.0f} s, changed={first.count('changed')}")

        again = playbook("-e", extra, home=home)
        assert_ok(again, "second run", dockerd)
        assert again.count("changed") == 0, f"second run changed something:\n{again.output}"
        check = playbook("-e", extra, "--check", home=home)
        assert_ok(check, "--check run", dockerd)

        srv = tmp_path / "srv"
        cert = srv / "tls" / "hub.crt"
        api = requests.get(f"https://127.0.0.1:{port}/hub/api/", verify=str(cert), timeout=30)
        assert api.status_code == 200 and "version" in api.json()
        for name in GENERATED:
            assert (srv / "state" / name).stat().st_mode & 0o777 == 0o600
        for path in (srv / "secrets" / "iam-client-secret", srv / "tls" / "hub.key"):
            assert path.stat().st_mode & 0o777 == 0o600
        hub_info = json.loads(dockerd.docker("inspect", HUB).stdout)[0]
        assert hub_info["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"

        # alice signs in through IAM (the certificate was checked above; chromium is told
        # to accept it since it is not in any browser trust store) and starts a server
        hub = SimpleNamespace(url=f"https://127.0.0.1:{port}", ca_file=cert)  # what sign_in reads
        page = sign_in(browser, hub, "alice", "alice-pass")
        page.wait_for_url("**/hub/spawn**", timeout=60_000)
        screenshot(page, "deploy-alice-spawn-form")
        page.get_by_role("button", name="Start").click()
        page.wait_for_url("**/user/alice/lab**", timeout=240_000)
        page.locator(".jp-LabShell").wait_for(timeout=120_000)
        screenshot(page, "deploy-alice-jupyterlab")
        # her IAM access token reaches her server as a file (through the auth service)
        token = wait_for_token(dockerd, "jupyter-alice")
        assert token.count(".") == 2, "the token file does not hold a JWT"
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # the services' calls check it
        submit_a_job(hub, idp, dockerd)

        secrets = [CLIENT_SECRET] + [(srv / "state" / n).read_text().strip() for n in GENERATED]
        user_info = json.loads(dockerd.docker("inspect", "jupyter-alice").stdout)[0]
        user_env = dockerd.docker("exec", "jupyter-alice", "env").stdout
        user_mounts = json.dumps(user_info["Mounts"])
        logs = dockerd.docker("logs", HUB)
        places = {"hub container env": "\n".join(hub_info["Config"]["Env"]),
                  "user container env (inspect)": "\n".join(user_info["Config"]["Env"]),
                  "user container env (exec)": user_env, "hub logs": logs.stdout + logs.stderr,
                  "ansible output": first.output + again.output + check.output}
        for where, text in places.items():
            for secret in secrets:
                assert secret not in text, f"a secret appears in the {where}"
        assert str(srv) not in user_mounts, "a folder of the hub is mounted in the user container"
        page.close()
    finally:
        jobs = dockerd.docker("ps", "-aq", "--filter", "name=mlaas4hep-job-", check=False)
        dockerd.docker("rm", "-f", "jupyter-alice", HUB, *jobs.stdout.split(), check=False)
        dockerd.docker("volume", "rm", "-f", "mlaas4hep-home-alice", check=False)
        idp.stop()
