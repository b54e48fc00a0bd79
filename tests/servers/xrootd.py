"""A throwaway XRootD data server on 127.0.0.1 for tests.

Needs the Debian packages ``xrootd-server`` (the ``xrootd`` daemon) and
``util-linux`` (``setpriv``, ``unshare``; always installed on Debian).

How the daemon is kept on the loopback interface: ``xrootd`` has no directive
to choose the address it binds (``xrd.port`` only takes a port, and it binds
the wildcard address ``[::]``). It does, however, take over a listening socket
handed to it in the systemd socket-activation way (``LISTEN_FDS``/
``LISTEN_PID``, socket on fd 3; ``XrdInet::BindSD``). So this helper binds
``127.0.0.1:<free port>`` itself and passes that socket in; the daemon never
opens a listening socket of its own. On top of that, the daemon runs in a new,
empty network namespace (``unshare --net``) by default: the inherited socket
still belongs to the host's loopback, but the daemon cannot open any other
connection. That matters because ``libXrdUtils`` reverse-resolves every
non-loopback interface address in a static initialiser, which would otherwise
send DNS queries to the configured name server at each start.

The daemon never runs as root: started by root, it is switched to the
``xrootd`` system user (created by the Debian package; ``nobody`` otherwise)
with ``setpriv`` before ``exec``. That user needs to read the export
directory, so :class:`XRootDServer` adds world read permission to the exported
tree and world search (``o+x``, not read) permission to the directories above
it, the latter only below the system temporary directory. Files added to the
export directory after the server started must be world-readable.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import IO

import pytest

INSTALL_HINT = "apt-get install xrootd-server"

_LOOPBACK = "127.0.0.1"
_READY_MARK = "initialization completed."
_UNPRIVILEGED_USERS = ("xrootd", "nobody")


def xrootd_available() -> str | None:
    """Return None if an XRootD server can be started here, else the reason."""
    if shutil.which("xrootd") is None:
        return f"the `xrootd` daemon is not installed (run: {INSTALL_HINT})"
    for tool in ("bash", "setpriv", "unshare"):
        if shutil.which(tool) is None:
            return f"`{tool}` is missing (util-linux/bash)"
    if os.geteuid() == 0 and _unprivileged_user() is None:
        return "no unprivileged user (`xrootd` or `nobody`) to run the daemon as"
    return None


def _unprivileged_user() -> pwd.struct_passwd | None:
    for name in _UNPRIVILEGED_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    return None


def _is_relative_to(path: Path, parent: Path) -> bool:
    try:
        path.relative_to(parent)
    except ValueError:
        return False
    return True


def _grant_search(directory: Path) -> None:
    """Give others search (``o+x``) permission on ``directory`` and its parents.

    Only directories below the system temporary directory are changed; any
    other parent that blocks the way raises PermissionError.
    """
    tmp = Path(tempfile.gettempdir()).resolve()
    for current in [directory, *directory.parents]:
        mode = current.stat().st_mode
        if mode & stat.S_IXOTH:
            continue
        if current != tmp and _is_relative_to(current, tmp):
            current.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
        else:
            raise PermissionError(
                f"{current} is not searchable by other users, so the "
                "unprivileged xrootd daemon cannot reach "
                f"{directory}; use a directory under {tmp}"
            )


def _grant_read_tree(root: Path) -> None:
    """Make every directory and file under ``root`` world-readable."""
    for dirpath, _dirnames, filenames in os.walk(root):
        current = Path(dirpath)
        current.chmod(stat.S_IMODE(current.stat().st_mode) | 0o555)
        for name in filenames:
            file = current / name
            if not file.is_symlink():
                file.chmod(stat.S_IMODE(file.stat().st_mode) | 0o444)


def _check_config_path(path: Path) -> None:
    if any(ch.isspace() for ch in str(path)):
        raise ValueError(f"xrootd config paths may not contain whitespace: {path}")


class XRootDServer:
    """Context manager running ``xrootd`` that exports ``export_dir`` read-only.

    ``root://127.0.0.1:PORT//a/b.root`` maps to ``export_dir/a/b.root``, so
    ``server.url + "/store/user/x.root"`` reads ``export_dir/store/user/x.root``.
    The config, the log (``workdir/xrootd/xrootd.log``) and the daemon's admin
    files live in ``workdir``.

    While running: ``url`` (``root://127.0.0.1:PORT/``), ``port``, ``pid``,
    ``startup_seconds``; after exit: ``returncode`` (``process`` is None).
    ``isolate_network=False`` skips the network namespace (for hosts where
    ``unshare --net`` is not permitted); the socket is still loopback-only.
    """

    def __init__(
        self,
        export_dir: Path,
        *,
        workdir: Path,
        isolate_network: bool = True,
        startup_timeout: float = 90.0,
    ) -> None:
        self.export_dir = Path(export_dir).resolve()
        self.workdir = Path(workdir).resolve()
        self.isolate_network = isolate_network
        self.startup_timeout = startup_timeout
        self.rundir = self.workdir / "xrootd"
        self.config_path = self.workdir / "xrootd.cfg"
        self.log_path = self.rundir / "xrootd.log"
        self.port: int = 0
        self.url: str = ""
        self.startup_seconds: float | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.returncode: int | None = None
        self._console: IO[bytes] | None = None
        self.environment: dict[str, str] = {}
        """Extra environment variables for the daemon."""

    # -- public helpers -------------------------------------------------

    def url_for(self, relpath: str) -> str:
        """``root://`` URL of ``export_dir / relpath``."""
        return f"{self.url}/{relpath.lstrip('/')}"

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the daemon log and console output."""
        text = ""
        for path in (self.rundir / "console.out", self.log_path):
            try:
                text += path.read_text(errors="replace")
            except OSError:
                continue
        return "\n".join(text.splitlines()[-lines:])

    # -- context manager ------------------------------------------------

    def __enter__(self) -> XRootDServer:
        reason = xrootd_available()
        if reason is not None:
            raise RuntimeError(reason)
        if not self.export_dir.is_dir():
            raise NotADirectoryError(self.export_dir)
        for path in (self.export_dir, self.workdir):
            _check_config_path(path)
        self._prepare_dirs()

        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # Bound but not listening: connections are refused until the
            # daemon adopts the socket and calls listen() itself.
            listener.bind((_LOOPBACK, 0))
            self.port = listener.getsockname()[1]
            self.url = f"root://{_LOOPBACK}:{self.port}/"
            self._write_config()
            started = time.monotonic()
            self._spawn(listener)
            listener.close()  # the daemon holds its own copy
            self._wait_ready(started)
        except BaseException:
            listener.close()
            self._stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    # -- internals --------------------------------------------------------

    def _prepare_dirs(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.rundir.mkdir(exist_ok=True)
        if os.geteuid() != 0:
            return
        user = _unprivileged_user()
        assert user is not None
        os.chown(self.rundir, user.pw_uid, user.pw_gid)
        self.rundir.chmod(0o755)
        _grant_search(self.workdir)
        _grant_search(self.export_dir)
        _grant_read_tree(self.export_dir)

    def _write_config(self) -> None:
        self.config_path.write_text(
            "# written by tests/servers/xrootd.py\n"
            "all.export / r/o\n"
            f"oss.localroot {self.export_dir}\n"
            f"all.adminpath {self.rundir}\n"
            f"all.pidpath {self.rundir}\n"
            "xrd.network nodnr\n"
        )
        self.config_path.chmod(0o644)

    def _command(self) -> list[str]:
        argv: list[str] = []
        root = os.geteuid() == 0
        if self.isolate_network:
            argv += ["unshare", "--net"] if root else ["unshare", "--map-current-user", "--net"]
        argv += ["setpriv", "--pdeathsig", "KILL"]
        if root:
            user = _unprivileged_user()
            assert user is not None
            argv += [
                f"--reuid={user.pw_uid}",
                f"--regid={user.pw_gid}",
                "--clear-groups",
            ]
        argv += [
            "xrootd",
            "-c", str(self.config_path),
            "-p", str(self.port),
            "-l", str(self.log_path),
        ]  # fmt: skip
        return argv

    def _spawn(self, listener: socket.socket) -> None:
        fd = listener.fileno()
        # bash (not dash) because the socket's fd may have two digits. unshare
        # and setpriv exec in place, so $$ is the daemon's pid as well.
        redirect = "" if fd == 3 else f" 3<&{fd} {fd}<&-"
        script = f'export LISTEN_PID=$$ LISTEN_FDS=1; exec "$@"{redirect}'
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
        env.update(self.environment)
        console = open(self.rundir / "console.out", "wb")  # noqa: SIM115
        self._console = console
        self.process = subprocess.Popen(
            ["bash", "-c", script, "xrootd-launcher", *self._command()],
            pass_fds=(fd,),
            cwd=self.rundir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.process.pid

    def _port_accepts(self) -> bool:
        try:
            with socket.create_connection((_LOOPBACK, self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def _wait_ready(self, started: float) -> None:
        assert self.process is not None
        deadline = started + self.startup_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"xrootd exited with status {self.process.returncode} "
                    f"during startup; log tail:\n{self.log_tail()}"
                )
            try:
                log = self.log_path.read_text(errors="replace")
            except OSError:
                log = ""
            if f":{self.port} {_READY_MARK}" in log and self._port_accepts():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"xrootd did not accept connections on {_LOOPBACK}:{self.port} "
                    f"within {self.startup_timeout:.0f} s; log tail:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def _stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None:
            self.returncode = process.returncode
        console, self._console = self._console, None
        if console is not None:
            console.close()


@pytest.fixture(scope="session")
def xrootd_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[Path], XRootDServer]]:
    """Factory: ``xrootd_server(export_dir)`` returns a running server.

    Servers are stopped at the end of the session. Fails (does not skip) when
    the daemon is not installed.
    """
    reason = xrootd_available()
    if reason is not None:
        pytest.fail(f"XRootD test server unavailable: {reason}", pytrace=False)
    with ExitStack() as stack:

        def start(export_dir: Path) -> XRootDServer:
            workdir = tmp_path_factory.mktemp("xrootd")
            return stack.enter_context(XRootDServer(export_dir, workdir=workdir))

        yield start
