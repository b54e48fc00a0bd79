"""WLCG bearer token discovery and what remote opens do with the token (no servers)."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest

from mlaas4hep.sources import refusal_message, with_token
from mlaas4hep.tokens import find_token
from mlaas4hep_hub.token_keeper import write_private


def jwt(**claims: object) -> str:
    """An unsigned JWT-shaped token with ``claims`` (discovery never checks signatures)."""
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'RS256', 'typ': 'at+jwt'})}.{part(claims)}.c2ln"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("BEARER_TOKEN", "BEARER_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return runtime


def test_discovery_order(env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_private(env / f"bt_u{os.geteuid()}", "from-runtime-dir\n")
    assert find_token().value == "from-runtime-dir"
    assert find_token().source == str(env / f"bt_u{os.geteuid()}")
    write_private(tmp_path / "tok", "from-file\n")
    monkeypatch.setenv("BEARER_TOKEN_FILE", str(tmp_path / "tok"))
    assert (find_token().value, find_token().source) == (
        "from-file", f"$BEARER_TOKEN_FILE ({tmp_path / 'tok'})")
    monkeypatch.setenv("BEARER_TOKEN", "from-env")
    assert (find_token().value, find_token().source) == ("from-env", "$BEARER_TOKEN")


def test_token_file_is_read_again_when_it_changes(env: Path) -> None:
    path = env / f"bt_u{os.geteuid()}"
    write_private(path, "first\n")
    assert find_token().value == "first"
    write_private(path, "second-token\n")  # replaced as the hub's keeper and oidc-agent do
    assert find_token().value == "second-token"


def test_claims_explain_the_token(env: Path) -> None:
    now = time.time()
    write_private(env / f"bt_u{os.geteuid()}", jwt(iss="https://iam.example", exp=now - 300,
                                                    scope="openid storage.read:/cms",
                                                    **{"wlcg.groups": ["/cms", "/cms/ml"]}))
    token = find_token()
    assert token.groups == ["/cms", "/cms/ml"] and token.scopes == ["openid", "storage.read:/cms"]
    summary = token.summary()
    assert "issuer https://iam.example, groups /cms, /cms/ml" in summary, summary
    assert "scopes openid storage.read:/cms, EXPIRED 5 min ago" in summary, summary
    assert token.value not in repr(token)


def test_opens_carry_the_token_only_where_it_is_safe(env: Path) -> None:
    write_private(env / f"bt_u{os.geteuid()}", jwt(exp=time.time() + 600))
    token = find_token()
    url, options = with_token("root://eos.example:1094//store/cms/a.root", token)
    assert url == (f"root://{token.tag}@eos.example:1094//store/cms/a.root"
                   f"?authz=Bearer%20{token.value}") and options == {}
    assert with_token("https://eos.example/store/a.root", token)[1] == {
        "headers": {"Authorization": f"Bearer {token.value}"}}
    assert with_token("http://eos.example/store/a.root", token) == (
        "http://eos.example/store/a.root", {})
    message = refusal_message("root://eos.example//store/a.root", "[3010] denied", None)
    assert "root://eos.example refused to read it: no bearer token found (looked in " \
           f"$BEARER_TOKEN, $BEARER_TOKEN_FILE, {env}/bt_u{os.geteuid()}" in message
