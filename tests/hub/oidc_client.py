"""A scripted OpenID client for tests: logs a user in through the dev IAM's
real login and consent forms (as oidc-agent would) and returns their tokens."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

SCOPE = "openid profile email offline_access wlcg.groups"


def discovery(issuer: str) -> dict[str, Any]:
    """The issuer's OpenID configuration."""
    response = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10)
    response.raise_for_status()
    return response.json()


def _form_action(page: requests.Response, suffix: str) -> str:
    actions = [a for a in re.findall(r'<form[^>]*action="([^"]+)"', page.text)
               if a.endswith(suffix)]
    assert actions, f"no form ending in {suffix} in:\n{page.text}"
    return urljoin(page.url, actions[0])


def _follow(session: requests.Session, response: requests.Response, issuer: str,
            redirect_uri: str) -> requests.Response | str:
    """Follow redirects inside the provider; the client's redirect URL is returned."""
    for _ in range(10):
        if not response.is_redirect:
            return response
        location = urljoin(response.url, response.headers["Location"])
        if location.startswith(redirect_uri):
            return location
        assert location.startswith(issuer + "/"), location
        response = session.get(location, allow_redirects=False, timeout=10)
    raise AssertionError("too many redirects")


def login_tokens(issuer: str, client: dict[str, Any], user: str, password: str,
                 scope: str = SCOPE) -> dict[str, Any]:
    """Authorization-code flow through the HTML forms; the token endpoint's answer."""
    endpoints = discovery(issuer)
    redirect_uri = client["redirect_uris"][0]
    session = requests.Session()
    response = session.get(endpoints["authorization_endpoint"], allow_redirects=False,
                           timeout=10, params={"response_type": "code", "scope": scope,
                                               "client_id": client["client_id"],
                                               "redirect_uri": redirect_uri,
                                               "state": "s", "prompt": "consent"})
    page = _follow(session, response, issuer, redirect_uri)
    assert isinstance(page, requests.Response)
    result = _follow(session, session.post(_form_action(page, "/login"), timeout=10,
                                           data={"login": user, "password": password},
                                           allow_redirects=False), issuer, redirect_uri)
    if isinstance(result, requests.Response):  # the consent page
        result = _follow(session, session.post(_form_action(result, "/confirm"), timeout=10,
                                               allow_redirects=False), issuer, redirect_uri)
    assert isinstance(result, str), "login did not come back to the client"
    code = parse_qs(urlsplit(result).query)["code"][0]
    answer = requests.post(endpoints["token_endpoint"], timeout=10,
                           auth=(client["client_id"], client["client_secret"]),
                           data={"grant_type": "authorization_code", "code": code,
                                 "redirect_uri": redirect_uri})
    answer.raise_for_status()
    return answer.json()


def userinfo(issuer: str, access_token: str) -> requests.Response:
    """The provider's userinfo answer for ``access_token``."""
    return requests.get(discovery(issuer)["userinfo_endpoint"], timeout=10,
                        headers={"Authorization": f"Bearer {access_token}"})


def refresh(issuer: str, client: dict[str, Any], refresh_token: str) -> dict[str, Any]:
    """The token endpoint's answer to a refresh grant (as oidc-agent does before expiry)."""
    answer = requests.post(discovery(issuer)["token_endpoint"], timeout=10,
                           auth=(client["client_id"], client["client_secret"]),
                           data={"grant_type": "refresh_token", "refresh_token": refresh_token})
    answer.raise_for_status()
    return answer.json()
