"""Protected remote data read with the user's own token, end to end (real parts).

The dev IAM (npm oidc-provider) serves its issuer metadata and keys over TLS
(test CA; the SciTokens library accepts only https issuers); a Debian
``xrootd`` with the SciTokens plugin lets group ``/cms`` read ``/store/cms``
and group ``/atlas`` read ``/store/atlas``; clients log in with ``ztn`` over
TLS. The framework finds the token by WLCG discovery (here
``$BEARER_TOKEN_FILE``, written 0600 as the hub's token keeper writes it).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlaas4hep.cli import main
from mlaas4hep.tokens import find_token
from mlaas4hep_hub.devidp import DevIdP
from mlaas4hep_hub.token_keeper import write_private

from .conftest import edit_json
from .hub.oidc_client import login_tokens, refresh
from .servers.tls_ca import make_test_ca, trust_in_this_process
from .servers.xrootd_tokens import TokenXRootDServer, experiments_store, token_xrootd_available
from .test_https_tokens import MLAAS4HEP

CLIENT = {"client_id": "oidc-agent", "client_secret": "agent-secret-5c1d",
          "redirect_uris": ["http://127.0.0.1:4242/"]}  # never contacted
TOKEN_TTL = 20


@dataclass
class Store:
    """The running IAM and storage."""

    idp: DevIdP
    server: TokenXRootDServer


@pytest.fixture(scope="module")
def store(samples: Path) -> Iterator[Store]:
    reason = token_xrootd_available()
    if reason is not None:
        pytest.fail(f"token XRootD test server unavailable: {reason}", pytrace=False)
    # not below /tmp/pytest-of-<user>: a pytest session starting meanwhile makes that 0700
    # again, and the unprivileged daemon reads its configuration there throughout
    with tempfile.TemporaryDirectory(prefix="mlaas4hep-tokens-") as tmp:
        yield from _store(Path(tmp), samples)


def _store(base: Path, samples: Path) -> Iterator[Store]:
    ca = make_test_ca(base / "ca")
    trust_in_this_process(ca)  # the XRootD client checks the storage's certificate
    saved = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = str(ca.ca)  # the scripted oidc-agent trusts the test CA
    try:
        with DevIdP(base / "idp", clients=[CLIENT], access_token_ttl=TOKEN_TTL,
                    tls_cert=ca.cert, tls_key=ca.key, tls_ca=ca.ca) as idp, \
             experiments_store(samples, idp.issuer, ca) as server:
            yield Store(idp, server)
    finally:
        if saved is None:
            os.environ.pop("REQUESTS_CA_BUNDLE", None)
        else:
            os.environ["REQUESTS_CA_BUNDLE"] = saved


@pytest.fixture
def user_env(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user environment with no token anywhere yet; returns where $BEARER_TOKEN_FILE points."""
    monkeypatch.delenv("BEARER_TOKEN", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "runtime"))
    token_file = tmp_path / "runtime" / "token"
    monkeypatch.setenv("BEARER_TOKEN_FILE", str(token_file))
    assert find_token() is None, f"a token is lying around: /tmp/bt_u{os.geteuid()}"
    return token_file


def inputs(folder: Path, area: str, redirector: str, **params: object) -> list[str]:
    """Options naming store.txt (/store/<area>/ paths), labels.txt and params.json (one
    epoch unless ``params`` say otherwise)."""
    (folder / "store.txt").write_text(f"/store/{area}/signal.root\n/store/{area}/background.root\n")
    edit_json(folder / "params.json", **{"redirector": redirector, "epochs": 1,
                                         "chunk_size": 4000, **params})
    return [f"--files={folder / 'store.txt'}", f"--labels={folder / 'labels.txt'}",
            f"--params={folder / 'params.json'}"]


def seed_command(folder: Path, area: str, redirector: str, out: str, **params: object
                 ) -> list[str]:
    return ["workflow", *inputs(folder, area, redirector, **params),
            f"--model={folder / 'model.py'}",
            f"--preproc={folder / 'preproc.json'}",
            f"--out-dir={folder / out}"]


def one_clear_line(capsys: pytest.CaptureFixture[str], token: str = "") -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert not token or token not in err, "the token leaked into the message"
    return err


def test_cms_token_reads_cms_trains_and_is_refused_on_atlas(
        store: Store, user_env: Path, workdir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    tokens = login_tokens(store.idp.issuer, CLIENT, "bob", "bob-pass")
    write_private(user_env, tokens["access_token"] + "\n")
    assert stat.S_IMODE(user_env.stat().st_mode) == 0o600

    assert main(seed_command(workdir, "cms", store.server.url, "run")) == 0
    metrics = json.loads((workdir / "run" / "metrics.json").read_text())
    assert 0 <= metrics["test"]["auc"] <= 1
    specs = json.loads((workdir / "run" / "global-specs.json").read_text())
    assert [f["path"] for f in specs["files"]] == [
        f"{store.server.url}/store/cms/{name}.root" for name in ("signal", "background")]
    capsys.readouterr()

    tokens = login_tokens(store.idp.issuer, CLIENT, "bob", "bob-pass")  # outlived by the run
    write_private(user_env, tokens["access_token"] + "\n")
    assert main(["prepare", *inputs(workdir, "atlas", store.server.url)]) == 2
    err = one_clear_line(capsys, tokens["access_token"])
    assert err.startswith(f"error: {store.server.url}/store/atlas/signal.root: "
                          f"{store.server.url.rstrip('/')} refused to read it: the token from "
                          f"$BEARER_TOKEN_FILE ({user_env})"), err
    assert "groups /cms" in err and "does not allow reading this path" in err, err
    assert f"issuer {store.idp.issuer}" in err, err


def test_no_token_is_refused_with_a_clear_message(
        store: Store, user_env: Path, workdir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prepare", *inputs(workdir, "cms", store.server.url)]) == 2
    err = one_clear_line(capsys)
    assert "refused to read it: no bearer token found (looked in $BEARER_TOKEN, " \
           f"$BEARER_TOKEN_FILE, {os.environ['XDG_RUNTIME_DIR']}/bt_u{os.geteuid()}" in err, err
    assert err.startswith(f"error: {store.server.url}/store/cms/signal.root: "), err


def test_a_client_without_tls_says_why_the_token_was_not_presented(
        store: Store, user_env: Path, workdir: Path) -> None:
    """The XRootD client gives up TLS for the whole process when its CA folder is missing
    at the first connection; the token login then cannot run, and the message says so
    (not that the token's groups are wrong)."""
    tokens = login_tokens(store.idp.issuer, CLIENT, "bob", "bob-pass")
    write_private(user_env, tokens["access_token"] + "\n")
    missing = workdir / "no-such-ca-folder"
    done = subprocess.run([str(MLAAS4HEP), "prepare", *inputs(workdir, "cms", store.server.url)],
                          env={**os.environ, "X509_CERT_DIR": str(missing)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert tokens["access_token"] not in done.stderr, "the token leaked into the message"
    assert errors[0].startswith(f"error: {store.server.url}/store/cms/signal.root: "), errors
    assert "could not present the token from $BEARER_TOKEN_FILE" in errors[0], errors
    assert f"its CA folder {missing} does not exist: set X509_CERT_DIR" in errors[0], errors
    assert "does not allow reading this path" not in errors[0], errors


class Keeper(threading.Thread):
    """Refreshes the token file every few seconds, as the hub's token keeper or oidc-agent do."""

    def __init__(self, store: Store, path: Path, tokens: dict[str, str], every: float) -> None:
        super().__init__(daemon=True)
        self.store, self.path, self.tokens, self.every = store, path, tokens, every
        self.written: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.every):
            self.tokens = refresh(self.store.idp.issuer, CLIENT, self.tokens["refresh_token"])
            write_private(self.path, self.tokens["access_token"] + "\n")
            self.written.append(time.monotonic())


def test_runs_outlive_their_token_with_the_file_refreshed(
        store: Store, user_env: Path, workdir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    first = login_tokens(store.idp.issuer, CLIENT, "alice", "alice-pass")
    write_private(user_env, first["access_token"] + "\n")
    started = time.monotonic()
    keeper = Keeper(store, user_env, first, every=1)  # more often than a run takes
    keeper.start()
    try:
        assert main(seed_command(workdir, "cms", store.server.url, "run1", epochs=3)) == 0
        ended = time.monotonic()
        assert any(started < t < ended for t in keeper.written), "no refresh during the run"
        # The first token has expired, and the storage keeps a token's rights for at most
        # 60 s: a later run in the same process (the wizard's kernel) must present the
        # current token, not the one its first connection logged in with.
        time.sleep(max(0.0, started + 65 - time.monotonic()))
        assert main(seed_command(workdir, "cms", store.server.url, "run2")) == 0
    finally:
        keeper.stop.set()
        keeper.join()
    assert (workdir / "run2" / "metrics.json").is_file()
    capsys.readouterr()

    write_private(user_env, first["access_token"] + "\n")  # a keeper that stopped long ago
    assert main(["prepare", *inputs(workdir, "cms", store.server.url)]) == 2
    err = one_clear_line(capsys, first["access_token"])
    assert "refused to read it: the token from $BEARER_TOKEN_FILE" in err, err
    assert "EXPIRED" in err and "get a fresh token" in err, err
