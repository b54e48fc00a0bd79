"""What the MLaaS4HEP services (inference, submit) share: who is calling, JSON errors,
the IAM bearer options and running the tornado app.

A caller is identified by JupyterHub (a browser with the service's OAuth
cookie; a browser without one is sent through the hub's OAuth sign-in, a
script gets a 401; or ``Authorization: token <hub token>`` from a notebook)
or by ``Authorization: Bearer <IAM access token>`` checked with the shared
:class:`~mlaas4hep_hub.bearer.BearerValidator`. Handlers see the user name
in ``self.user``; a user only ever reaches their own models and jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from typing import Any

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import web

from mlaas4hep.errors import UserError
from mlaas4hep.services.store import Forbidden, NotFound

from .auth_service import BaseHandler
from .bearer import BearerError, BearerValidator, token_from_header

UNAUTHENTICATED = ("sign in to the hub first, or send 'Authorization: Bearer <IAM access "
                   "token>' (oidc-token) or 'Authorization: token <hub API token>'")


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """A mistake of the caller as a JSON error: 404 no such thing, 403 not theirs, 400 other."""
    try:
        yield
    except NotFound as exc:
        raise web.HTTPError(404, str(exc)) from None
    except Forbidden as exc:
        raise web.HTTPError(403, str(exc)) from None
    except UserError as exc:
        raise web.HTTPError(400, str(exc)) from None


class ServiceHandler(HubOAuthenticated, BaseHandler):
    """Authenticated JSON handler (see the module docstring)."""

    user: str

    async def prepare(self) -> None:
        header = self.request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            validator: BearerValidator = self.settings["validator"]
            try:
                token = token_from_header(header)
                identity = (validator.cached(token)
                            or await asyncio.to_thread(validator.validate, token))
            except BearerError as exc:
                raise web.HTTPError(exc.status, str(exc)) from None
            self.user = identity.username
            return
        model = self.get_current_user()
        if not model and not header and self.request.method == "GET" and "text/html" in \
                self.request.headers.get("Accept", ""):
            self.redirect(self.get_login_url())  # a browser: sign in through the hub's OAuth
            return
        if not model or model.get("kind") != "user":
            raise web.HTTPError(401, UNAUTHENTICATED)
        self.user = model["name"]

    def check_xsrf_cookie(self) -> None:
        """Requests with an Authorization header carry no cookie to forge."""
        if "Authorization" not in self.request.headers:
            super().check_xsrf_cookie()


def service_app(default_prefix: str, routes: list[tuple[str, Any]], *,
                cookie_secret: bytes | None = None, **settings: Any) -> web.Application:
    """A tornado app for a hub service: ``routes`` (paths relative to the prefix) plus the
    OAuth callback, with HubOAuth from the hub's JUPYTERHUB_* variables. The OAuth cookies
    are signed with ``cookie_secret`` (the same in every process of a service; default: a
    new random one)."""
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", default_prefix)
    hub_auth = HubOAuth(api_token=os.environ["JUPYTERHUB_API_TOKEN"], cache_max_age=60)
    handlers = [(url_path_join(prefix, path) if path else prefix.rstrip("/") + "/?", handler)
                for path, handler in routes]
    handlers.append((url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler))
    return web.Application(handlers, hub_auth=hub_auth,
                           cookie_secret=cookie_secret or os.urandom(32), **settings)
