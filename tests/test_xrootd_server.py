"""Reading ROOT files over root:// from the local XRootD test server."""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import awkward as ak
import pytest
import uproot
import uproot.source.fsspec

from tests.servers.xrootd import (
    XRootDServer,
    xrootd_available,
    xrootd_server,  # noqa: F401  (fixture)
)

HZZ = Path(__file__).parent / "data" / "uproot-HZZ.root"
BRANCHES = ["Muon_Px", "NJet"]

StartServer = Callable[[Path], XRootDServer]


@pytest.fixture(scope="module")
def hzz_server(
    xrootd_server: StartServer,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> XRootDServer:
    export = tmp_path_factory.mktemp("xrootd-export")
    shutil.copy(HZZ, export / "uproot-HZZ.root")
    (export / "store" / "user").mkdir(parents=True)
    shutil.copy(HZZ, export / "store" / "user" / "hzz.root")
    return xrootd_server(export)


def _read(path: str) -> dict[str, ak.Array]:
    with uproot.open(path) as file:
        tree = file["events"]
        return {name: tree[name].array(library="ak") for name in BRANCHES}


def _listening_addresses(port: int) -> list[str]:
    """Local addresses of LISTEN sockets on ``port`` in this network namespace."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                local, state = line.split()[1], line.split()[3]
                address, port_hex = local.split(":")
                if state == "0A" and int(port_hex, 16) == port:
                    found.append(address)
    return found


def _port_is_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("relpath", ["/uproot-HZZ.root", "/store/user/hzz.root"])
def test_remote_arrays_equal_local(hzz_server: XRootDServer, relpath: str) -> None:
    url = hzz_server.url + relpath  # root://127.0.0.1:PORT//...
    with uproot.open(url) as file:
        # uproot picks its fsspec source (fsspec-xrootd) for root:// itself.
        assert isinstance(file.file.source, uproot.source.fsspec.FSSpecSource)
    remote = _read(url)
    local = _read(str(HZZ))
    assert len(remote["NJet"]) == 2421
    for name in BRANCHES:
        assert ak.array_equal(remote[name], local[name]), name
        assert str(remote[name].type) == str(local[name].type)


def test_missing_remote_file_names_the_path(hzz_server: XRootDServer) -> None:
    with pytest.raises(OSError, match=re.escape("/store/user/missing.root")):
        uproot.open(hzz_server.url_for("store/user/missing.root"))


def test_server_lifecycle(tmp_path: Path) -> None:
    reason = xrootd_available()
    if reason is not None:
        pytest.fail(reason, pytrace=False)
    export = tmp_path / "export"
    export.mkdir()
    shutil.copy(HZZ, export / "f.root")

    with XRootDServer(export, workdir=tmp_path / "work") as server:
        port, pid = server.port, server.pid
        assert pid is not None
        assert server.url == f"root://127.0.0.1:{port}/"
        assert _port_is_open(port)
        # Bound to loopback only (0100007F is 127.0.0.1 in /proc/net/tcp).
        assert _listening_addresses(port) == ["0100007F"]
        status = Path(f"/proc/{pid}/status").read_text()
        real_uid = int(next(x for x in status.splitlines() if x.startswith("Uid:")).split()[1])
        assert real_uid != 0 or os.geteuid() != 0, "daemon must not run as root"
        assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
        assert _read(server.url_for("f.root"))["NJet"].tolist() == _read(str(HZZ))["NJet"].tolist()

    assert server.process is None
    assert server.returncode is not None
    assert not Path(f"/proc/{pid}").exists()
    assert not _port_is_open(port)
    assert _listening_addresses(port) == []
