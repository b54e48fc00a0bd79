"""The user's bearer token for protected remote data (WLCG bearer token discovery).

The token is looked up, in this order, in ``$BEARER_TOKEN``, the file named by
``$BEARER_TOKEN_FILE``, ``$XDG_RUNTIME_DIR/bt_u$UID`` and ``/tmp/bt_u$UID``
(the WLCG Bearer Token Discovery specification; oidc-agent, htgettoken and the
hub's token keeper write these files). A file is read again whenever it
changes, so a long run keeps using the current token across refreshes::

    token = find_token()
    token.source, token.groups, token.scopes, token.expires_in()

The claims are decoded only to explain a refusal (groups, scopes, expiry);
the storage checks the signature. The token itself never goes into a message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class BearerToken:
    """A discovered token, where it came from and its (unverified) claims."""

    value: str = field(repr=False)
    source: str
    claims: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def groups(self) -> list[str]:
        """``wlcg.groups`` (or ``groups``) of the token."""
        groups = self.claims.get("wlcg.groups", self.claims.get("groups", []))
        return [str(g) for g in groups] if isinstance(groups, list) else [str(groups)]

    @property
    def scopes(self) -> list[str]:
        """The token's scopes (``scope`` claim, space separated)."""
        return str(self.claims.get("scope", "")).split()

    @property
    def tag(self) -> str:
        """A short, non-secret name for this token (first hex digits of its SHA-256)."""
        return hashlib.sha256(self.value.encode()).hexdigest()[:8]

    def expires_in(self, now: float | None = None) -> float | None:
        """Seconds until the token expires (negative once expired); None without ``exp``."""
        exp = self.claims.get("exp")
        if not isinstance(exp, (int, float)):
            return None
        return float(exp) - (time.time() if now is None else now)

    def summary(self) -> str:
        """One line on what the token is and allows, for messages."""
        left = self.expires_in()
        if left is None:
            validity = "no expiry"
        elif left <= 0:
            validity = f"EXPIRED {_duration(-left)} ago"
        else:
            validity = f"valid for {_duration(left)}"
        return (f"token from {self.source} (issuer {self.claims.get('iss', '?')}, "
                f"groups {', '.join(self.groups) or 'none'}, "
                f"scopes {' '.join(self.scopes) or 'none'}, {validity})")


def discovery_places() -> list[str]:
    """Where :func:`find_token` looks, in order, as shown in messages."""
    uid = os.geteuid()
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    places = ["$BEARER_TOKEN", "$BEARER_TOKEN_FILE"]
    if runtime:
        places.append(f"{runtime}/bt_u{uid}")
    return [*places, f"/tmp/bt_u{uid}"]


def find_token() -> BearerToken | None:
    """The user's current bearer token by WLCG discovery, or None when there is none."""
    value = os.environ.get("BEARER_TOKEN", "").strip()
    if value:
        return BearerToken(value, "$BEARER_TOKEN", decode_claims(value))
    uid = os.geteuid()
    candidates = []
    if os.environ.get("BEARER_TOKEN_FILE"):
        candidates.append(("$BEARER_TOKEN_FILE", Path(os.environ["BEARER_TOKEN_FILE"])))
    if os.environ.get("XDG_RUNTIME_DIR"):
        candidates.append(("", Path(os.environ["XDG_RUNTIME_DIR"]) / f"bt_u{uid}"))
    candidates.append(("", Path(f"/tmp/bt_u{uid}")))
    for variable, path in candidates:
        value = _read_token_file(path)
        if value:
            source = f"{variable} ({path})" if variable else str(path)
            return BearerToken(value, source, decode_claims(value))
    return None


_FILE_CACHE: dict[Path, tuple[tuple[int, int, int], str]] = {}


def _read_token_file(path: Path) -> str:
    """The token in ``path`` ("" when missing or empty), read again only when it changed."""
    try:
        info = path.stat()
    except OSError:
        return ""
    stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
    cached = _FILE_CACHE.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        value = path.read_text().strip()
    except OSError:
        return ""
    _FILE_CACHE[path] = (stamp, value)
    return value


def decode_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT without checking its signature; {} for anything else."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
