"""Files the hub keeps between restarts: secrets generated once, read with care."""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.request
from pathlib import Path
from typing import Any

from .apply import Secrets
from .config import ConfigError


def ensure_secret(path: Path, nbytes: int = 32) -> str:
    """Read the hex secret in ``path``, creating it (0600) on first use."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(nbytes))
    return path.read_text().strip()


def read_client_secret(path: str | Path, *, config: str) -> str:
    """The IAM client secret from its file (which must not be readable by others)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{config}: iam.client_secret_file: {path} does not exist")
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"{config}: iam.client_secret_file: {path} is readable by other "
                          f"users; run: chmod 600 {path}")
    secret = path.read_text().strip()
    if not secret:
        raise ConfigError(f"{config}: iam.client_secret_file: {path} is empty")
    return secret


def prepare_state(cfg: dict[str, Any], *, config: str) -> Secrets:
    """Create the state folder (0700) and the secrets the hub needs."""
    state = Path(cfg["hub"]["state_dir"])
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(state, 0o700)
    cookie = state / "jupyterhub_cookie_secret"
    ensure_secret(cookie)
    return Secrets(client_secret=read_client_secret(cfg["iam"]["client_secret_file"],
                                                    config=config),
                   crypt_key=ensure_secret(state / "crypt_key"),
                   cookie_secret_file=str(cookie),
                   proxy_token=ensure_secret(state / "proxy_token"))


def fetch_discovery(issuer: str, *, timeout: float = 30.0) -> dict[str, Any]:
    """The issuer's OpenID configuration, retried until ``timeout`` (IAM may be starting)."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                discovery = json.load(response)
            break
        except OSError as exc:
            if time.monotonic() > deadline:
                raise ConfigError(f"iam.issuer: cannot read {url}: {exc}") from None
            time.sleep(0.5)
    missing = [k for k in ("issuer", "authorization_endpoint", "token_endpoint",
                           "userinfo_endpoint", "jwks_uri") if k not in discovery]
    if missing:
        raise ConfigError(f"iam.issuer: {url} lacks {', '.join(missing)}")
    return discovery
