"""The images of images/build.sh, built on a private dockerd from the prepared
Debian root file system and wheelhouse: what a user server and the hub need
is in them, at the tested venv's versions, running as non-root, with no
wheels, pip configuration or CA certificates of the build machine inside."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from importlib.metadata import distributions, version
from pathlib import Path

import pytest
import requests
from packaging.utils import canonicalize_name

from tests.browser import free_port
from tests.docker.dockerd import BUILD, ROOT, TEST_LABEL, BuiltImages, DockerDaemon

# the first test also waits for the image builds (several minutes)
pytestmark = pytest.mark.timeout(2400)

EXAMPLES = "/opt/mlaas4hep/share/examples"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PEM = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)


def wait_for(url: str, process_check, timeout: float = 60, **kwargs) -> requests.Response:
    """GET ``url`` until it answers 200 (``process_check()`` raises if the server died)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = requests.get(url, timeout=5, **kwargs)
            if response.status_code == 200:
                return response
        except requests.ConnectionError:
            pass
        process_check()
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer 200 within {timeout} s")
        time.sleep(0.5)


@contextlib.contextmanager
def running(dockerd: DockerDaemon, what: str, *run_args: str) -> Iterator[Callable[[], None]]:
    """``docker run -d`` a test container (host network); yields a check that fails the test
    with the container's log if it has exited; removes the container at the end."""
    container = dockerd.docker("run", "-d", "--rm", "--network", "host", "--label", TEST_LABEL,
                               *run_args).stdout.strip()

    def alive() -> None:
        state = dockerd.docker("inspect", "-f", "{{.State.Running}}", container, check=False)
        if state.stdout.strip() != "true":
            pytest.fail(f"{what} exited: {dockerd.docker('logs', container, check=False)}")

    try:
        yield alive
    finally:
        dockerd.docker("rm", "-f", container, check=False)


def certificates(pem_text: str) -> set[str]:
    """The certificates of a PEM bundle (base64 DER, whitespace removed)."""
    return {"".join(body.split()) for body in PEM.findall(pem_text)}


# --- the user server image -----------------------------------------------------

def test_workflow_help(dockerd: DockerDaemon, built_images: BuiltImages) -> None:
    result = dockerd.run(built_images.singleuser, "workflow.py", "--help")
    assert "--params" in result.stdout


def test_user_image_imports(dockerd: DockerDaemon, built_images: BuiltImages) -> None:
    script = ("import mlaas4hep, tensorflow, uproot, ipywidgets, mlaas4hep_hub.token_keeper\n"
              "import mlaas4hep_wizard\n"
              "from importlib.metadata import version\n"
              "print(tensorflow.__version__, version('tensorflow-cpu'))")
    result = dockerd.run(built_images.singleuser, "python", "-c", script,
                         options=("-e", "TF_CPP_MIN_LOG_LEVEL=2"))
    assert result.stdout.split() == [version("tensorflow-cpu")] * 2


def test_user_image_runs_as_jovyan(dockerd: DockerDaemon, built_images: BuiltImages) -> None:
    result = dockerd.run(built_images.singleuser, "sh", "-c", 'id -u; id -un; echo "$HOME"; pwd')
    uid, name, home, cwd = result.stdout.split()
    assert uid != "0"
    assert (uid, name, home, cwd) == ("1000", "jovyan", "/home/jovyan", "/home/jovyan")


def test_singleuser_is_the_venvs_jupyterhub(dockerd: DockerDaemon,
                                            built_images: BuiltImages) -> None:
    result = dockerd.run(built_images.singleuser, "jupyterhub-singleuser", "--version")
    assert result.stdout.strip() == version("jupyterhub")


def test_tools_on_path_in_login_shells(dockerd: DockerDaemon,
                                       built_images: BuiltImages) -> None:
    """JupyterLab terminals run login shells, whose /etc/profile resets PATH."""
    result = dockerd.run(built_images.singleuser, "bash", "-lc",
                         "command -v workflow.py mlaas4hep python")
    assert result.stdout.split() == ["/opt/mlaas4hep/bin/workflow.py",
                                     "/opt/mlaas4hep/bin/mlaas4hep", "/opt/mlaas4hep/bin/python"]


def test_examples(dockerd: DockerDaemon, built_images: BuiltImages) -> None:
    result = dockerd.run(built_images.singleuser, "sh", "-c",
                         f"cd {EXAMPLES} && ls -1 && sha256sum uproot-HZZ.root")
    lines = result.stdout.splitlines()
    expected = {p.name for p in (ROOT / "extension" / "notebooks").iterdir()
                if p.name != "__pycache__" and not p.name.startswith(".")}
    expected |= {p.name for p in (ROOT / "mlaas4hep" / "examples").iterdir()
                 if p.is_file() and not p.name.startswith(".")}
    expected.add("uproot-HZZ.root")
    assert set(lines[:-1]) == expected
    sample = (ROOT / "tests" / "data" / "uproot-HZZ.root").read_bytes()
    assert lines[-1].split()[0] == hashlib.sha256(sample).hexdigest()


def test_user_image_has_the_venvs_versions(dockerd: DockerDaemon,
                                           built_images: BuiltImages) -> None:
    """Every distribution in both the image and .venv has the same version, but for
    the pins relaxed for the images' older Python (images/.build/relaxed-pins.txt)."""
    result = dockerd.run(built_images.singleuser, "python", "-m", "pip", "list",
                         "--format=json", "--disable-pip-version-check")
    image = {canonicalize_name(d["name"]): d["version"] for d in json.loads(result.stdout)}
    venv = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()}
    relaxed = {canonicalize_name(line.split("\t")[0])
               for line in (BUILD / "relaxed-pins.txt").read_text().splitlines() if line}
    ignore = {"pip", "setuptools", "wheel"} | relaxed
    differ = {name: (venv[name], image[name]) for name in image.keys() & venv.keys()
              if name not in ignore and image[name] != venv[name]}
    assert not differ, f"versions (venv, image) differ: {differ}"
    assert "torch" not in image
    for name in ("mlaas4hep", "mlaas4hep-hub", "mlaas4hep-wizard", "jupyterlab", "ipywidgets",
                 "tensorflow-cpu", "xrootd", "fsspec-xrootd", "jupyterhub"):
        assert name in image, name


def test_jupyterlab_serves_as_jovyan(dockerd: DockerDaemon, built_images: BuiltImages) -> None:
    port = free_port()
    token = "test-token-5f1c"
    with running(dockerd, "jupyter lab", built_images.singleuser, "jupyter", "lab",
                 "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
                 f"--IdentityProvider.token={token}") as alive:
        status = wait_for(f"http://127.0.0.1:{port}/api/status", alive,
                          headers={"Authorization": f"token {token}"})
        assert "started" in status.json()
        lab = wait_for(f"http://127.0.0.1:{port}/lab", alive,
                       headers={"Authorization": f"token {token}"})
        assert "JupyterLab" in lab.text


# --- the hub image ---------------------------------------------------------------

def test_hub_versions(dockerd: DockerDaemon, built_images: BuiltImages) -> None:
    hub = dockerd.run(built_images.hub, "jupyterhub", "--version")
    assert hub.stdout.strip() == version("jupyterhub")
    proxy = dockerd.run(built_images.hub, "configurable-http-proxy", "--version")
    lock = json.loads((ROOT / "hub" / "proxy" / "package.json").read_text())
    assert proxy.stdout.strip() == lock["dependencies"]["configurable-http-proxy"]


def test_hub_image_imports(dockerd: DockerDaemon, built_images: BuiltImages) -> None:
    dockerd.run(built_images.hub, "python", "-c",
                "import dockerspawner, oauthenticator, mlaas4hep_hub, jupyterhub_idle_culler,"
                " mlaas4hep_hub.auth_service, mlaas4hep_hub.inference_service,"
                " mlaas4hep_hub.submit_service")


def test_hub_image_layout(dockerd: DockerDaemon, built_images: BuiltImages) -> None:
    result = dockerd.run(built_images.hub, "sh", "-c",
                         "id -u; id -un; pwd; cat jupyterhub_config.py")
    uid, name, cwd, config = result.stdout.split("\n", 3)
    assert uid != "0"
    assert (name, cwd) == ("hub", "/srv/jupyterhub")
    assert config == (ROOT / "hub" / "jupyterhub_config.py").read_text()
    inspect = json.loads(dockerd.docker("image", "inspect", built_images.hub).stdout)[0]
    assert inspect["Config"]["Cmd"] == ["jupyterhub", "-f", "/srv/jupyterhub/jupyterhub_config.py"]


def test_proxy_serves(dockerd: DockerDaemon, built_images: BuiltImages) -> None:
    """configurable-http-proxy (Node.js from the wheel) answers its REST API."""
    port, api_port, token = free_port(), free_port(), "proxy-token-92ab"
    with running(dockerd, "the proxy", "-e", f"CONFIGPROXY_AUTH_TOKEN={token}",
                 built_images.hub, "configurable-http-proxy", "--ip", "127.0.0.1",
                 "--port", str(port), "--api-ip", "127.0.0.1",
                 "--api-port", str(api_port)) as alive:
        routes = wait_for(f"http://127.0.0.1:{api_port}/api/routes", alive,
                          headers={"Authorization": f"token {token}"})
        assert routes.json() == {}


# --- both ------------------------------------------------------------------------

@pytest.fixture(params=["singleuser", "hub"])
def image(request: pytest.FixtureRequest, built_images: BuiltImages) -> str:
    return getattr(built_images, request.param)


def test_no_wheels_left(dockerd: DockerDaemon, image: str) -> None:
    """The wheels stayed in the build stage: not in the image, not in a layer."""
    dockerd.run(image, "sh", "-c", "test ! -e /wheels && test ! -e /local")
    history = dockerd.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image)
    assert "/wheels" not in history.stdout


def test_no_build_machine_pip_config(dockerd: DockerDaemon, image: str) -> None:
    """This machine's pip configuration (its mirrors, its CA bundle) stayed out."""
    result = dockerd.run(image, "sh", "-c",
                         "ls /etc/pip.conf /etc/xdg/pip 2>/dev/null; env | grep '^PIP_' || true")
    assert result.stdout.strip() == ""


def test_no_host_ca_certificates(dockerd: DockerDaemon, image: str) -> None:
    """Every CA certificate in the image's bundle comes from the image's own Debian
    ca-certificates package; none that only the build machine trusts got in, and no
    file in the image is the host's bundle unless that equals Debian's own."""
    bundle = dockerd.run(image, "cat", "/etc/ssl/certs/ca-certificates.crt").stdout
    packaged = dockerd.run(image, "sh", "-c",
                           "find /usr/share/ca-certificates -name '*.crt' -exec cat {} +").stdout
    local = dockerd.run(image, "find", "/usr/local/share/ca-certificates", "-type", "f",
                        check=False).stdout
    image_certs, package_certs = certificates(bundle), certificates(packaged)
    assert len(image_certs) > 100
    assert image_certs <= package_certs, "CA certificates not from Debian's package"
    assert local.strip() == ""
    if not HOST_CA_BUNDLE.exists():
        return
    host_text = HOST_CA_BUNDLE.read_text(errors="replace")
    host_only = certificates(host_text) - package_certs
    assert not host_only & image_certs, "a CA certificate of the build machine got in"
    # no file of the host bundle's size is the host bundle (unless Debian's bundle
    # and the host's are the same file, which the checks above already cover)
    host_bytes = HOST_CA_BUNDLE.read_bytes()
    size, digest = len(host_bytes), hashlib.sha256(host_bytes).hexdigest()
    same_size = dockerd.run(image, "sh", "-c",
                            f"find / -xdev -type f -size {size}c -exec sha256sum {{}} + "
                            "2>/dev/null || true", options=("--user", "0")).stdout
    copies = [line.split(None, 1)[1] for line in same_size.splitlines()
              if line.split()[0] == digest]
    if host_only:
        assert not copies, f"the build machine's CA bundle is in the image: {copies}"
    else:
        assert set(copies) <= {"/etc/ssl/certs/ca-certificates.crt"}
