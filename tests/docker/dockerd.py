"""A private Docker daemon for the tests, and the project's images built on it.

``dockerd`` (session) starts ``dockerd`` with its socket, data and exec roots in
a temporary folder, no bridge and no iptables rules, so it works inside the
tests' loopback-only network namespace (containers run with ``--network
host``). Nothing is set globally: use ``dockerd.host`` (a ``unix://`` URL for
``DOCKER_HOST``), ``dockerd.env()``, ``dockerd.docker(*args)`` or
``dockerd.run(image, *cmd)``. At the end every container and volume of that
daemon is removed, the daemon is stopped (SIGTERM, then SIGKILL) and its data
root deleted.

``built_images`` (session) runs ``images/build.sh images`` against that daemon
(no registry: the base image is the root file system that
``images/build.sh prepare`` made) and returns the image names.

Missing tools or prepared files make the fixtures fail (never skip), with the
command that fixes it.

Other test folders can use the fixtures by importing them in their conftest:
``from tests.docker.dockerd import built_images, dockerd  # noqa: F401``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "images" / ".build"
TEST_LABEL = "mlaas4hep.test=1"
INSTALL_HINT = "apt-get install docker.io debootstrap"
PREPARE_HINT = "images/build.sh prepare"
START_TIMEOUT = 30.0
BUILD_TIMEOUT = 2400
#: files that `images/build.sh prepare` makes and `images/build.sh images` needs
PREPARED = ("base-bookworm.tar", "wheels/.inputs.sha256", "constraints-image.txt",
            "proxy/.inputs.sha256")


class DockerError(subprocess.CalledProcessError):
    """A docker command failed; str() shows the command, exit status and stderr."""

    def __str__(self) -> str:
        return (f"`{' '.join(map(str, self.cmd))}` exited {self.returncode}:\n"
                f"{(self.stderr or '').strip()[-4000:]}")


@dataclass
class DockerDaemon:
    """A dockerd of our own."""

    root: Path
    process: subprocess.Popen
    log: Path
    host: str = field(init=False)

    def __post_init__(self) -> None:
        self.host = f"unix://{self.root / 'docker.sock'}"

    def env(self, **extra: str) -> dict[str, str]:
        """os.environ for the docker CLI: this daemon, a private CLI config."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("DOCKER_") or k == "DOCKER_BUILDKIT"}
        env.update(DOCKER_HOST=self.host, DOCKER_CONFIG=str(self.root / "cli"), **extra)
        return env

    def docker(self, *args: str, check: bool = True, timeout: float = 600,
               input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI on this daemon (text output captured)."""
        cmd = ["docker", *map(str, args)]
        result = subprocess.run(cmd, env=self.env(), capture_output=True, text=True,
                                timeout=timeout, input=input, check=False)
        if check and result.returncode != 0:
            raise DockerError(result.returncode, cmd, result.stdout, result.stderr)
        return result

    def run(self, image: str, *cmd: str, options: tuple[str, ...] = (), check: bool = True,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """``docker run --rm --network host`` (labelled as a test container)."""
        return self.docker("run", "--rm", "--network", "host", "--label", TEST_LABEL,
                           *options, image, *cmd, check=check, timeout=timeout)

    def ready(self) -> bool:
        return self.docker("version", "--format", "{{.Server.Version}}", check=False,
                           timeout=10).returncode == 0

    def remove_all(self) -> None:
        """Remove every container and volume of this daemon."""
        containers = self.docker("ps", "-aq", check=False, timeout=60).stdout.split()
        if containers:
            self.docker("rm", "-f", "-v", *containers, check=False, timeout=120)
        volumes = self.docker("volume", "ls", "-q", check=False, timeout=60).stdout.split()
        if volumes:
            self.docker("volume", "rm", "-f", *volumes, check=False, timeout=120)

    def stop(self) -> None:
        """Stop the daemon (and its containerd), then delete its folder."""
        containerd_pid = _read_pid(self.root / "exec" / "containerd" / "containerd.pid")
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        if containerd_pid and _is_our_containerd(containerd_pid, self.root):
            _terminate(containerd_pid)
        _unmount_below(self.root)
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_our_containerd(pid: int, root: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return "containerd" in cmdline and str(root) in cmdline


def _terminate(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _unmount_below(root: Path) -> None:
    """Unmount whatever the daemon left mounted in its folder (deepest first)."""
    try:
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return
    prefix = f"{root}/"
    for mount in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)


def require_tools() -> None:
    """Fail (never skip) without root, dockerd or the docker CLI."""
    missing = [tool for tool in ("dockerd", "docker") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not found: run `{INSTALL_HINT}`", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("the Docker tests start their own dockerd, which needs root", pytrace=False)


def require_prepared() -> None:
    """Fail (never skip) without what `images/build.sh prepare` makes."""
    missing = [name for name in PREPARED if not (BUILD / name).exists()]
    if missing:
        pytest.fail(f"{', '.join(str(BUILD / m) for m in missing)} missing: run "
                    f"`{PREPARE_HINT}` (with network, outside tests/isolated.sh)",
                    pytrace=False)


def start_dockerd(root: Path) -> DockerDaemon:
    """Start a dockerd whose every file lives under ``root``; wait until it answers."""
    root.mkdir(parents=True, exist_ok=True)
    log = root / "dockerd.log"
    namespace = f"mlaas4hep-test-{os.getpid()}"  # apart even on a shared containerd
    cmd = ["dockerd", "--host", f"unix://{root / 'docker.sock'}",
           "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
           "--pidfile", str(root / "docker.pid"), "--bridge", "none", "--iptables=false",
           "--ip6tables=false", "--containerd-namespace", namespace,
           "--containerd-plugins-namespace", f"{namespace}-plugins"]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    daemon = DockerDaemon(root=root, process=process, log=log)
    deadline = time.monotonic() + START_TIMEOUT
    while not daemon.ready():
        if process.poll() is not None or time.monotonic() > deadline:
            tail = daemon.log_tail()
            daemon.stop()
            pytest.fail(f"dockerd did not start within {START_TIMEOUT:.0f} s:\n{tail}",
                        pytrace=False)
        time.sleep(0.5)
    return daemon


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerDaemon]:
    """A dockerd of our own (see the module docstring)."""
    require_tools()
    require_prepared()
    daemon = start_dockerd(tmp_path_factory.mktemp("dockerd"))
    try:
        yield daemon
    finally:
        try:
            daemon.remove_all()
        finally:
            daemon.stop()


@dataclass(frozen=True)
class BuiltImages:
    """The images that `images/build.sh images` built, and how long it took."""

    singleuser: str
    hub: str
    seconds: float
    log: Path


@pytest.fixture(scope="session")
def built_images(dockerd: DockerDaemon, tmp_path_factory: pytest.TempPathFactory) -> BuiltImages:
    """mlaas4hep/singleuser and mlaas4hep/hub built on ``dockerd`` from the
    prepared root file system and wheelhouse (no registry, no network)."""
    env = dockerd.env()
    for name in ("BASE_IMAGE", "IMAGE_TAG", "TENSORFLOW", "NODEJS_WHEEL", "TARGET_PYTHON"):
        env.pop(name, None)
    log = tmp_path_factory.mktemp("images-build") / "build.log"  # kept by pytest
    start = time.monotonic()
    with open(log, "w") as err:
        result = subprocess.run([str(ROOT / "images" / "build.sh"), "images"], env=env,
                                stdout=subprocess.PIPE, stderr=err, text=True,
                                timeout=BUILD_TIMEOUT, check=False)
    seconds = time.monotonic() - start
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        pytest.fail(f"images/build.sh images exited {result.returncode} (log: {log}):\n{tail}",
                    pytrace=False)
    names = result.stdout.split()
    singleuser = next(n for n in names if n.startswith("mlaas4hep/singleuser:"))
    hub = next(n for n in names if n.startswith("mlaas4hep/hub:"))
    return BuiltImages(singleuser=singleuser, hub=hub, seconds=seconds, log=log)
