"""Protected ``https://`` reads with the user's own token, end to end (real parts).

A loopback HTTPS file server (test CA; byte ranges as ROOT readers need, from
:mod:`tests.test_http`) admits ``Authorization: Bearer`` tokens of the dev IAM:
signature against the issuer's JWKS, issuer, audience and expiry are checked by
the hub's own :class:`~mlaas4hep_hub.bearer.BearerValidator`, and the token's
groups map to paths as on a storage element (group ``cms`` reads
``/store/cms/``). The framework runs as a user runs it, ``mlaas4hep prepare``
in a process of its own, finding the token by WLCG discovery
(``$BEARER_TOKEN_FILE``) and trusting the test CA by ``$SSL_CERT_FILE``.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from mlaas4hep_hub.bearer import BearerError, BearerValidator, token_from_header
from mlaas4hep_hub.devidp import DevIdP
from mlaas4hep_hub.state import fetch_discovery
from mlaas4hep_hub.token_keeper import write_private

from .hub.oidc_client import login_tokens
from .servers.tls_ca import make_test_ca
from .test_http import RangeHandler

CLIENT = {"client_id": "oidc-agent", "client_secret": "agent-secret-9e3b",
          "redirect_uris": ["http://127.0.0.1:4242/"]}  # never contacted
MLAAS4HEP = Path(sys.executable).parent / "mlaas4hep"


class BearerRangeHandler(RangeHandler):
    """:class:`RangeHandler` that serves ``/store/<group>/...`` to valid tokens of that group."""

    server: TokenHTTPServer

    def do_GET(self) -> None:
        if self._allowed():
            super().do_GET()

    def do_HEAD(self) -> None:
        if self._allowed():
            super().do_HEAD()

    def _allowed(self) -> bool:
        try:
            token = token_from_header(self.headers.get("Authorization"))
            identity = self.server.validator.validate(token)
        except BearerError as exc:
            self.send_error(exc.status, str(exc))
            return False
        area = self.path.split("/")[2] if self.path.startswith("/store/") else ""
        if area not in identity.groups:
            self.send_error(403, f"groups {identity.groups} may not read {self.path}")
            return False
        self.server.readers.add(identity.username)
        return True


class TokenHTTPServer(ThreadingHTTPServer):
    """HTTPS on 127.0.0.1 with the token checks of :class:`BearerRangeHandler`."""

    def __init__(self, folder: Path, validator: BearerValidator, context: ssl.SSLContext):
        super().__init__(("127.0.0.1", 0), partial(BearerRangeHandler, directory=str(folder)))
        self.validator, self.readers = validator, set[str]()
        self.socket = context.wrap_socket(self.socket, server_side=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"


@dataclass
class Storage:
    """The running IAM and HTTPS storage, and the CA its certificate comes from."""

    idp: DevIdP
    server: TokenHTTPServer
    ca_file: Path


@pytest.fixture(scope="module")
def storage(samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    base = tmp_path_factory.mktemp("https-tokens")
    ca = make_test_ca(base / "ca")
    for area in ("cms", "atlas"):
        (base / "export" / "store" / area).mkdir(parents=True)
        for name in ("signal.root", "background.root"):
            shutil.copy(samples / name, base / "export" / "store" / area / name)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(ca.cert, ca.key)
    with DevIdP(base / "idp", clients=[CLIENT]) as idp:
        validator = BearerValidator(idp.issuer, fetch_discovery(idp.issuer)["jwks_uri"],
                                    audiences=[idp.issuer])
        server = TokenHTTPServer(base / "export", validator, context)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Storage(idp, server, ca.ca)
        finally:
            server.shutdown()
            server.server_close()


def prepare(storage: Storage, folder: Path, area: str, token: str | None
            ) -> subprocess.CompletedProcess[str]:
    """``mlaas4hep prepare`` on the two files of ``/store/<area>/`` with ``token`` (or none)
    in ``$BEARER_TOKEN_FILE``."""
    files = folder / f"{area}.txt"
    files.write_text("".join(f"{storage.server.url}/store/{area}/{name}.root\n"
                             for name in ("signal", "background")))
    (folder / "labels.txt").write_text("1\n0\n")
    (folder / "params.json").write_text(json.dumps({"chunk_size": 4000}))
    runtime = folder / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    token_file = runtime / "token"
    if token is None:
        token_file.unlink(missing_ok=True)
    else:
        write_private(token_file, token + "\n")
    env = {k: v for k, v in os.environ.items() if k != "BEARER_TOKEN"}
    env.update(BEARER_TOKEN_FILE=str(token_file), XDG_RUNTIME_DIR=str(runtime),
               SSL_CERT_FILE=str(storage.ca_file))
    return subprocess.run([str(MLAAS4HEP), "prepare", f"--files={files}",
                           f"--labels={folder / 'labels.txt'}",
                           f"--params={folder / 'params.json'}",
                           f"--output={folder / f'{area}.npz'}"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def refusal(result: subprocess.CompletedProcess[str], token: str | None) -> str:
    """The one-line error of a refused run (and no token in it)."""
    assert result.returncode == 2, result.stdout + result.stderr
    err = result.stderr
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert token is None or token not in err + result.stdout, "the token leaked"
    return err


def test_https_reads_carry_the_discovered_token_and_refusals_say_why(
        storage: Storage, tmp_path: Path) -> None:
    assert not Path(f"/tmp/bt_u{os.geteuid()}").exists(), "a token is lying around in /tmp"
    url = storage.server.url
    token = login_tokens(storage.idp.issuer, CLIENT, "bob", "bob-pass")["access_token"]

    read = prepare(storage, tmp_path, "cms", token)
    assert read.returncode == 0, read.stdout + read.stderr
    assert token not in read.stdout + read.stderr
    assert storage.server.readers == {"bob"}
    labels = np.load(tmp_path / "cms.npz")["y"]
    assert (labels == 1).sum() == (labels == 0).sum() == 4000, labels

    err = refusal(prepare(storage, tmp_path, "atlas", token), token)
    assert err.startswith(f"error: {url}/store/atlas/signal.root: {url} refused to read it: "
                          f"the token from $BEARER_TOKEN_FILE ({tmp_path / 'runtime' / 'token'})"
                          f" (issuer {storage.idp.issuer}, groups /cms"), err
    assert "does not allow reading this path" in err, err

    err = refusal(prepare(storage, tmp_path, "cms", None), None)
    assert err.startswith(f"error: {url}/store/cms/signal.root: {url} refused to read it: "
                          "no bearer token found (looked in $BEARER_TOKEN, $BEARER_TOKEN_FILE, "
                          f"{tmp_path / 'runtime'}/bt_u{os.geteuid()}"), err
