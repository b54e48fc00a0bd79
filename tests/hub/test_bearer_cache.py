"""The bearer validator remembers a token that passed until it expires: the signature is
checked once per token, an expired token is refused even when it was accepted before, and a
refused token is never remembered. Real RS256 tokens; the JWKS served on loopback."""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from mlaas4hep_hub.bearer import BearerError, BearerValidator

ISSUER = "https://iam.example.test/"


def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def token(key: rsa.RSAPrivateKey, lifetime: float) -> str:
    now = time.time()
    claims = {"iss": ISSUER, "sub": "a1", "preferred_username": "alice", "groups": ["cms"],
              "iat": int(now), "exp": now + lifetime}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
def issued(tmp_path: Path) -> Iterator[tuple[rsa.RSAPrivateKey, BearerValidator]]:
    key = signing_key()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "k1",
                                                              "alg": "RS256"}]}))
    files = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        jwks = f"http://127.0.0.1:{server.server_port}/jwks.json"
        yield key, BearerValidator(ISSUER, jwks, leeway=0)
    finally:
        server.shutdown()
        server.server_close()


def counting_checks(validator: BearerValidator, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    checked: list[str] = []
    check = validator._check

    def counted(value: str) -> object:
        checked.append(value)
        return check(value)

    monkeypatch.setattr(validator, "_check", counted)
    return checked


def test_a_valid_token_is_checked_once_until_it_expires(
        issued: tuple[rsa.RSAPrivateKey, BearerValidator],
        monkeypatch: pytest.MonkeyPatch) -> None:
    key, validator = issued
    checked = counting_checks(validator, monkeypatch)
    short = token(key, lifetime=2)
    assert validator.validate(short).username == "alice"
    assert validator.cached(short) is not None
    for _ in range(5):
        assert validator.validate(short).groups == ["cms"]
    assert checked == [short]
    time.sleep(2.5)
    assert validator.cached(short) is None
    with pytest.raises(BearerError, match="token expired"):
        validator.validate(short)
    assert checked == [short, short]


def test_a_refused_token_is_not_remembered(
        issued: tuple[rsa.RSAPrivateKey, BearerValidator],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, validator = issued
    checked = counting_checks(validator, monkeypatch)
    forged = token(signing_key(), lifetime=600)
    for _ in range(2):
        with pytest.raises(BearerError, match="signature does not verify"):
            validator.validate(forged)
        assert validator.cached(forged) is None
    assert checked == [forged, forged]
