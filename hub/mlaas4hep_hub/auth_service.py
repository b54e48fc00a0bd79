"""The hub's ``auth`` service (``/services/auth/``).

``POST /services/auth/hub-token`` with ``Authorization: Bearer <IAM access
token>`` (e.g. from oidc-agent) returns a short-lived JupyterHub API token
for that user, so scripts can use the hub API and the MLaaS4HEP services::

    curl -X POST -H "Authorization: Bearer $(oidc-token mlaas4hep)" \\
         https://HOST/services/auth/hub-token

``GET /services/auth/token`` with a user's JupyterHub token returns that
user's current IAM access token (refreshed by the hub before it expires);
user servers use it to keep ``$BEARER_TOKEN_FILE`` fresh. Nothing here logs
a token.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any
from urllib.parse import quote

from jupyterhub.services.auth import HubAuth
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .bearer import (
    BearerError,
    BearerValidator,
    bearer_options,
    token_from_header,
    validator_from,
)
from .serving import serve

HUB_TOKEN_SCOPES = ["read:users:name!user", "read:users:groups!user", "servers!user",
                    "access:servers!user", "access:services!service=inference",
                    "access:services!service=submit"]


class HubAPI:
    """The few hub REST calls the service makes, with the service's own token."""

    def __init__(self, api_url: str, token: str):
        self.api_url = api_url
        self._token = token

    async def call(self, method: str, path: str, body: Any = None, *,
                   token: str | None = None) -> Any:
        """Call ``path`` of the hub API; ``token`` overrides the service token."""
        request = HTTPRequest(url_path_join(self.api_url, path), method=method,
                              headers={"Authorization": f"token {token or self._token}"},
                              body=None if body is None else json.dumps(body))
        response = await AsyncHTTPClient().fetch(request)
        return json.loads(response.body) if response.body else None


class BaseHandler(web.RequestHandler):
    """JSON errors: ``{"error": message}``."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None))[1]
        message = exc.log_message if isinstance(exc, web.HTTPError) else self._reason
        self.finish({"error": message or self._reason})

    @property
    def hub(self) -> HubAPI:
        return self.settings["hub_api"]


class HubTokenHandler(BaseHandler):
    """IAM bearer token -> short-lived JupyterHub API token."""

    async def post(self) -> None:
        validator: BearerValidator = self.settings["validator"]
        try:
            token = token_from_header(self.request.headers.get("Authorization"))
            identity = await asyncio.to_thread(validator.validate, token)
        except BearerError as exc:
            raise web.HTTPError(exc.status, str(exc)) from None
        name = identity.username
        try:
            await self.hub.call("GET", f"users/{quote(name)}")
        except HTTPClientError as exc:
            if exc.code != 404:
                raise
            await self.hub.call("POST", f"users/{quote(name)}", {})
        ttl = self.settings["token_ttl"]
        try:
            created = await self.hub.call("POST", f"users/{quote(name)}/tokens", {
                "expires_in": ttl, "scopes": HUB_TOKEN_SCOPES,
                "note": "from an IAM bearer token via /services/auth/hub-token"})
        except HTTPClientError as exc:
            raise web.HTTPError(502, f"the hub refused to create a token for {name!r} "
                                     f"(HTTP {exc.code})") from None
        self.finish({"token": created["token"], "user": name, "expires_in": ttl,
                     "scopes": created.get("scopes", HUB_TOKEN_SCOPES)})


class AccessTokenHandler(BaseHandler):
    """A user's own current IAM access token, for their server's token file."""

    async def get(self) -> None:
        header = self.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "token" or not token:
            raise web.HTTPError(401, "missing 'Authorization: token <JupyterHub token>'")
        user = await self.settings["hub_auth"].user_for_token(token.strip(), sync=False)
        if not user or user.get("kind") != "user":
            raise web.HTTPError(403, "not a user's JupyterHub token")
        # a request made with the user's own token lets the hub refresh their auth state
        await self.hub.call("GET", "user", token=token.strip())
        model = await self.hub.call("GET", f"users/{quote(user['name'])}")
        state = model.get("auth_state") or {}
        if not state.get("access_token"):
            raise web.HTTPError(404, "no IAM token stored for this user; sign in again")
        self.finish({"access_token": state["access_token"],
                     "expires_at": state.get("expires_at")})


class StatusHandler(BaseHandler):
    def get(self) -> None:
        self.finish({"service": "mlaas4hep auth", "issuer": self.settings["validator"].issuer})


def make_app(prefix: str, validator: BearerValidator, hub_api: HubAPI, hub_auth: HubAuth,
             token_ttl: int) -> web.Application:
    """The tornado application of the service, mounted under ``prefix``."""
    return web.Application([
        (url_path_join(prefix, "hub-token"), HubTokenHandler),
        (url_path_join(prefix, "token"), AccessTokenHandler),
        (prefix.rstrip("/") + "/?", StatusHandler),
    ], validator=validator, hub_api=hub_api, hub_auth=hub_auth, token_ttl=token_ttl)


def main(argv: list[str] | None = None) -> None:
    """Run the service (started by the hub, which sets the JUPYTERHUB_* variables)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    bearer_options(parser)
    parser.add_argument("--token-ttl", type=int, default=3600)
    args = parser.parse_args(argv)
    validator = validator_from(args)
    api_url = os.environ["JUPYTERHUB_API_URL"]
    token = os.environ["JUPYTERHUB_API_TOKEN"]
    app = make_app(os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/auth/"), validator,
                   HubAPI(api_url, token), HubAuth(api_token=token, api_url=api_url),
                   args.token_ttl)
    serve(lambda: app, args.port)


if __name__ == "__main__":
    main()
