"""Validation of IAM access tokens sent as ``Authorization: Bearer <token>``.

Shared by every MLaaS4HEP service that accepts IAM tokens (auth, inference,
submit): signature against the issuer's JWKS, issuer, expiry, audience and
client (azp), and the allowed groups. Each refusal says what was wrong.
A token that passed is remembered (in memory) until it expires, so a client
sending many requests pays for the signature check once.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import jwt

from .auth import groups_from_claims


class BearerError(Exception):
    """A refused token: HTTP status and a message for the caller."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Identity:
    """Who a valid token belongs to."""

    username: str
    groups: list[str]
    claims: dict[str, Any] = field(repr=False)


def token_from_header(header: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header, or a 401 BearerError."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise BearerError(401, "missing 'Authorization: Bearer <IAM access token>' header")
    return token.strip()


class BearerValidator:
    """Checks IAM JWT access tokens (see the module docstring)."""

    def __init__(self, issuer: str, jwks_uri: str, *, audiences: list[str] | None = None,
                 clients: list[str] | None = None, allowed_groups: list[str] | None = None,
                 groups_claims: list[str] | None = None,
                 username_claim: str = "preferred_username", leeway: float = 5.0):
        self.issuer = issuer
        self.audiences = audiences or []
        self.clients = clients or []
        self.allowed_groups = set(allowed_groups or [])
        self.groups_claims = groups_claims or ["groups", "wlcg.groups"]
        self.username_claim = username_claim
        self.leeway = leeway
        self._keys = jwt.PyJWKClient(jwks_uri, cache_keys=True, lifespan=3600)
        self._valid: OrderedDict[str, Identity] = OrderedDict()
        self._lock = threading.Lock()

    remembered = 4096
    """Valid tokens kept (the least recently used go first)."""

    def cached(self, token: str) -> Identity | None:
        """The identity of a token that passed :meth:`validate` and has not expired yet."""
        with self._lock:
            identity = self._valid.get(token)
            if identity is None:
                return None
            if time.time() < identity.claims["exp"]:
                self._valid.move_to_end(token)
                return identity
            del self._valid[token]
        return None

    def validate(self, token: str) -> Identity:
        """Return the token's identity or raise BearerError (401 invalid, 403 not allowed)."""
        identity = self.cached(token)
        if identity is None:
            identity = self._check(token)
            with self._lock:
                self._valid[token] = identity
                while len(self._valid) > self.remembered:
                    self._valid.popitem(last=False)
        return identity

    def _check(self, token: str) -> Identity:
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise BearerError(401, "the bearer token is not a JWT access token") from None
        if unverified.get("iss") != self.issuer:
            raise BearerError(401, f"token issued by {unverified.get('iss')!r}; this hub "
                                   f"trusts {self.issuer!r}")
        claims = self._verified_claims(token)
        client = claims.get("azp") or claims.get("client_id")
        if self.clients and client not in self.clients:
            raise BearerError(401, f"token obtained by client {client!r}, which is not "
                                   "accepted here")
        username = claims.get(self.username_claim)
        if not username:
            raise BearerError(401, f"token has no '{self.username_claim}' claim; request the "
                                   "'profile' scope")
        groups = groups_from_claims(claims, self.groups_claims)
        if self.allowed_groups and not self.allowed_groups & set(groups):
            raise BearerError(403, f"user {username!r} is in groups {groups or '(none)'}; "
                                   f"allowed groups: {sorted(self.allowed_groups)}")
        return Identity(str(username), groups, claims)

    def _verified_claims(self, token: str) -> dict[str, Any]:
        try:
            key = self._keys.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientError:
            raise BearerError(401, "token signed with a key the issuer does not publish") \
                from None
        options = {"verify_aud": bool(self.audiences), "require": ["exp", "iss", "sub"]}
        try:
            return jwt.decode(token, key, algorithms=["RS256", "ES256", "PS256"],
                              issuer=self.issuer, audience=self.audiences or None,
                              options=options, leeway=self.leeway)
        except jwt.ExpiredSignatureError:
            raise BearerError(401, "token expired; get a fresh one (oidc-token)") from None
        except jwt.InvalidAudienceError:
            raise BearerError(401, f"token audience is not one of {self.audiences}") from None
        except jwt.InvalidSignatureError:
            raise BearerError(401, "token signature does not verify with the issuer's keys") \
                from None
        except jwt.PyJWTError as exc:
            raise BearerError(401, f"invalid token: {exc}") from None


def bearer_options(parser: argparse.ArgumentParser) -> None:
    """The command-line options of an IAM bearer-token validator."""
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--jwks-uri", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--allowed-group", action="append", default=[])
    parser.add_argument("--audience", action="append", default=[])
    parser.add_argument("--client", action="append", default=[])
    parser.add_argument("--groups-claim", action="append", default=[])
    parser.add_argument("--username-claim", default="preferred_username")


def validator_from(args: argparse.Namespace) -> BearerValidator:
    """The validator configured by :func:`bearer_options`."""
    return BearerValidator(args.issuer, args.jwks_uri, audiences=args.audience,
                           clients=args.client, allowed_groups=args.allowed_group,
                           groups_claims=args.groups_claim or None,
                           username_claim=args.username_claim)
