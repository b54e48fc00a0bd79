"""Start and stop the local dev OpenID provider (``server.mjs``) from Python.

The provider behaves like INDIGO IAM (JWT access tokens, ``wlcg.groups`` scope, refresh
tokens) and is meant for the hub's dev mode and for tests. It only listens on 127.0.0.1.

Example::

    client = {"client_id": "hub", "client_secret": "s3cret",
              "redirect_uris": ["http://127.0.0.1:8000/hub/oauth_callback"]}
    with DevIdP(tmp_path, clients=[client]) as idp:
        print(idp.issuer)  # http://127.0.0.1:<port>

Only the standard library is used.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["DEFAULT_CLIENT", "DEVIDP_DIR", "DevIdP", "ensure_installed", "find_node"]

log = logging.getLogger("mlaas4hep_hub.devidp")

STALL_SECONDS = 20.0
"""A provider that has not answered and used no CPU for this long is stuck: it is started
again once (node has been seen blocking on a futex at start-up, on a loaded machine)."""

DEVIDP_DIR = Path(__file__).resolve().parents[1] / "devidp"
"""Folder holding ``server.mjs``, ``package.json`` and ``package-lock.json``."""

INSTALL_HINT = (
    "The dev identity provider needs Node.js (>= 20) and npm: "
    "install them, e.g. `apt-get install nodejs npm`."
)

DEFAULT_CLIENT: dict[str, Any] = {
    "client_id": "mlaas4hep-hub",
    "client_secret": "mlaas4hep-hub-dev-secret",
    "redirect_uris": ["http://127.0.0.1:8000/hub/oauth_callback"],
}
"""The client the provider registers when no clients are given."""

_STAMP = ".devidp-installed"


def find_node() -> str:
    """Return the path of the ``node`` executable, or raise RuntimeError with an install hint."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError(f"`node` was not found on PATH. {INSTALL_HINT}")
    return node


def _lock_digest(directory: Path) -> str:
    lock = directory / "package-lock.json"
    if not lock.is_file():
        raise RuntimeError(f"{lock} is missing; it must be kept next to package.json")
    return hashlib.sha256(lock.read_bytes()).hexdigest()


def _installed(directory: Path, digest: str) -> bool:
    stamp = directory / "node_modules" / _STAMP
    provider = directory / "node_modules" / "oidc-provider" / "package.json"
    try:
        return provider.is_file() and stamp.read_text().strip() == digest
    except OSError:
        return False


@contextlib.contextmanager
def _install_lock(directory: Path) -> Iterator[None]:
    with open(directory / ".npm-install.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_installed(directory: Path = DEVIDP_DIR, *, timeout: float = 600.0) -> Path:
    """Install the provider's npm packages with ``npm ci`` unless they are already current.

    ``node_modules`` counts as current when it holds a stamp with the hash of
    ``package-lock.json`` written by an earlier successful install. Concurrent callers
    are serialised with a file lock. Returns the ``node_modules`` folder.

    Raises:
        RuntimeError: node or npm is missing, or ``npm ci`` failed (with its output tail).
    """
    directory = Path(directory)
    find_node()
    digest = _lock_digest(directory)
    node_modules = directory / "node_modules"
    if _installed(directory, digest):
        return node_modules
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"`npm` was not found on PATH. {INSTALL_HINT}")
    with _install_lock(directory):
        if _installed(directory, digest):
            return node_modules
        try:
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--omit=dev"],
                cwd=directory,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"`npm ci` in {directory} timed out after {timeout:.0f} s") from exc
        if result.returncode != 0:
            tail = (result.stdout + result.stderr)[-4000:]
            raise RuntimeError(f"`npm ci` in {directory} failed ({result.returncode}):\n{tail}")
        (node_modules / _STAMP).write_text(digest + "\n")
    return node_modules


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DevIdP:
    """A running dev OpenID provider; use as a context manager (or call start/stop).

    Args:
        state_dir: folder for the signing key (``jwks.json``), the clients file and the log
            (``devidp.log``). Reuse it to keep the same keys across restarts.
        port: port on 127.0.0.1; 0 picks a free one.
        clients: client registrations (``client_id``, ``client_secret``, ``redirect_uris``,
            optionally any other oidc-provider client metadata). Defaults to DEFAULT_CLIENT.
        access_token_ttl: access token lifetime in seconds.
        users: optional user list (see README); the built-in demo users otherwise.
        audience: ``aud`` of the access tokens; the issuer by default.
        auto_consent: skip the consent page.
        startup_timeout: seconds to wait for the discovery document.
        tls_cert, tls_key: PEM certificate (chain) and key: serve HTTPS (``https://`` issuer,
            as storage token plugins such as XRootD's SciTokens require).
        tls_ca: PEM file of the CA that signed ``tls_cert`` (to check the provider answers).
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        port: int = 0,
        clients: Sequence[Mapping[str, Any]] | None = None,
        access_token_ttl: int = 3600,
        *,
        users: Sequence[Mapping[str, Any]] | None = None,
        audience: str | None = None,
        auto_consent: bool = False,
        startup_timeout: float = 90.0,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        tls_ca: str | os.PathLike[str] | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.port = int(port)
        self.clients = [dict(c) for c in (clients if clients is not None else [DEFAULT_CLIENT])]
        self.access_token_ttl = int(access_token_ttl)
        self.users = [dict(u) for u in users] if users is not None else None
        self.audience = audience
        self.auto_consent = auto_consent
        self.startup_timeout = startup_timeout
        self.tls_cert, self.tls_key, self.tls_ca = tls_cert, tls_key, tls_ca
        self._process: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ properties

    @property
    def issuer(self) -> str:
        """The issuer URL (``http(s)://127.0.0.1:PORT``); valid once started."""
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def discovery_url(self) -> str:
        """URL of the OpenID discovery document."""
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def log_path(self) -> Path:
        """File receiving the provider's stdout and stderr (appended across restarts)."""
        return self.state_dir / "devidp.log"

    @property
    def keys_path(self) -> Path:
        """File holding the provider's RSA signing key (JWKS with private parts)."""
        return self.state_dir / "jwks.json"

    @property
    def running(self) -> bool:
        """Whether the provider process is alive."""
        return self._process is not None and self._process.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        """The last ``chars`` characters of the log."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # ------------------------------------------------------------------ lifecycle

    def _write_json(self, name: str, data: object) -> Path:
        path = self.state_dir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
        return path

    def command(self) -> list[str]:
        """The ``node server.mjs ...`` command line (without starting anything)."""
        cmd = [
            find_node(),
            str(DEVIDP_DIR / "server.mjs"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--issuer",
            self.issuer,
            "--state-dir",
            str(self.state_dir),
            "--keys",
            str(self.keys_path),
            "--clients",
            str(self.state_dir / "clients.json"),
            "--access-token-ttl",
            str(self.access_token_ttl),
        ]
        if self.users is not None:
            cmd += ["--users", str(self.state_dir / "users.json")]
        if self.audience:
            cmd += ["--audience", self.audience]
        if self.auto_consent:
            cmd.append("--auto-consent")
        if self.tls_cert:
            cmd += ["--tls-cert", str(self.tls_cert), "--tls-key", str(self.tls_key)]
        return cmd

    def start(self) -> DevIdP:
        """Install the npm packages if needed, start the provider and wait for discovery.

        Raises:
            RuntimeError: node/npm missing, install failure, or the provider did not answer
                within ``startup_timeout`` seconds (the message holds the log tail).
        """
        if self.running:
            return self
        ensure_installed()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.port == 0:
            self.port = _free_port()
        self._write_json("clients.json", self.clients)
        if self.users is not None:
            self._write_json("users.json", self.users)
        self._spawn()
        try:
            try:
                self._wait_ready(stall=True)
            except _Stalled as stalled:
                log.warning("dev IdP stuck at start-up (%s); starting it again", stalled)
                self.stop()
                self._spawn()
                self._wait_ready(stall=False)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self) -> None:
        with open(self.log_path, "ab") as out:
            self._process = subprocess.Popen(
                self.command(),
                cwd=DEVIDP_DIR,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        atexit.register(self.stop)

    def _wait_ready(self, *, stall: bool) -> None:
        """Return once discovery answers; with ``stall``, raise :class:`_Stalled` when the
        process makes no progress (no CPU used) for ``STALL_SECONDS``."""
        deadline = time.monotonic() + self.startup_timeout
        last_error = "no answer"
        context = ssl.create_default_context(cafile=self.tls_ca) if self.tls_ca else None
        progress = (self._cpu_seconds(), time.monotonic())
        while time.monotonic() < deadline:
            assert self._process is not None
            cpu = self._cpu_seconds()
            if cpu != progress[0]:
                progress = (cpu, time.monotonic())
            elif stall and time.monotonic() - progress[1] > STALL_SECONDS:
                raise _Stalled(self._process_state())
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"dev IdP exited with code {self._process.returncode} before answering; "
                    f"log tail ({self.log_path}):\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.discovery_url, timeout=2,
                                            context=context) as response:
                    document = json.load(response)
                if document.get("issuer") == self.issuer:
                    return
                last_error = f"unexpected issuer {document.get('issuer')!r}"
            except (OSError, ValueError) as exc:
                last_error = str(exc)
            time.sleep(0.1)
        raise RuntimeError(
            f"dev IdP did not answer {self.discovery_url} within {self.startup_timeout:.0f} s "
            f"({last_error}); {self._process_state()}; "
            f"log tail ({self.log_path}):\n{self.log_tail()}"
        )

    def _cpu_seconds(self) -> float | None:
        """CPU time the provider's process has used (None if unknown)."""
        assert self._process is not None
        try:
            fields = (Path("/proc") / str(self._process.pid) / "stat").read_text()
        except OSError:
            return None
        user, system = fields.rsplit(")", 1)[1].split()[11:13]
        return (int(user) + int(system)) / os.sysconf("SC_CLK_TCK")

    def _process_state(self) -> str:
        """Where a provider that does not answer is stuck: kernel state, wait channel, CPU time."""
        assert self._process is not None
        proc = Path("/proc") / str(self._process.pid)
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            wchan = (proc / "wchan").read_text().strip() or "-"
        except OSError as exc:
            return f"process {self._process.pid} state unknown ({exc})"
        key = "written" if self.keys_path.is_file() else "not written yet"
        return (f"process {self._process.pid} state {state}, waiting in {wchan}, "
                f"{self._cpu_seconds() or 0:.1f} s CPU used, signing key {key}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the provider (SIGTERM, then SIGKILL after ``timeout`` seconds)."""
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)

    def __enter__(self) -> DevIdP:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"DevIdP(issuer={self.issuer!r}, state_dir={str(self.state_dir)!r}, {state})"


class _Stalled(Exception):
    """The provider's process stopped making progress before answering."""
