"""INDIGO IAM login: GenericOAuthenticator configured through its public hooks.

- user name from ``preferred_username``;
- groups from the ``groups`` and ``wlcg.groups`` claims, leading '/' stripped;
- ``allowed_groups`` enforced at login with a 403 page that says why;
- access tokens refreshed *before* they expire (``refresh_user_hook``), so
  the copy in each user's server never goes stale.
"""

from __future__ import annotations

import time
from typing import Any

from oauthenticator.generic import GenericOAuthenticator
from traitlets import Integer, List, Unicode, default

from .apply import strip_group


def groups_from_claims(user_info: dict[str, Any], claims: list[str]) -> list[str]:
    """Union of the group claims, '/' stripped, in first-seen order."""
    groups: list[str] = []
    for claim in claims:
        values = user_info.get(claim) or []
        for group in [values] if isinstance(values, str) else values:
            name = strip_group(str(group))
            if name and name not in groups:
                groups.append(name)
    return groups


def token_expires_at(auth_state: dict[str, Any]) -> float | None:
    """When the stored access token expires (epoch seconds), if known."""
    return auth_state.get("expires_at")


class IAMAuthenticator(GenericOAuthenticator):
    """GenericOAuthenticator for INDIGO IAM (see the module docstring)."""

    groups_claims = List(
        Unicode(), default_value=["groups", "wlcg.groups"], config=True,
        help="Userinfo claims holding the user's groups; a leading '/' is stripped.")
    token_refresh_margin = Integer(
        120, config=True,
        help="Refresh the access token when it expires within this many seconds.")

    @default("login_service")
    def _login_service_default(self) -> str:
        return "IAM"

    @default("username_claim")
    def _username_claim_default(self) -> str:
        return "preferred_username"

    @default("auth_state_groups_key")
    def _groups_key_default(self) -> Any:
        return lambda auth_state: groups_from_claims(
            auth_state.get(self.user_auth_state_key) or {}, self.groups_claims)

    @default("modify_auth_state_hook")
    def _modify_auth_state_default(self) -> Any:
        return _record_expiry

    @default("refresh_user_hook")
    def _refresh_hook_default(self) -> Any:
        return _refresh_before_expiry

    @default("custom_403_message")
    def _custom_403_default(self) -> str:
        allowed = ", ".join(sorted(self.allowed_groups)) or "(none)"
        return (f"Your IAM account is not in a group allowed on this hub. Allowed groups: "
                f"{allowed}. Ask your group manager to add you, then sign in again.")


def _record_expiry(authenticator: IAMAuthenticator, auth_state: dict[str, Any]
                   ) -> dict[str, Any]:
    expires_in = (auth_state.get("token_response") or {}).get("expires_in")
    if expires_in:
        auth_state["expires_at"] = time.time() + float(expires_in)
    return auth_state


async def _refresh_before_expiry(authenticator: IAMAuthenticator, user: Any,
                                 auth_state: dict[str, Any] | None) -> Any:
    """Refresh with the refresh token when the access token is about to expire.

    Returns None (oauthenticator's usual refresh) when there is nothing to
    do early, or the new auth model.
    """
    if not auth_state or not auth_state.get("refresh_token"):
        return None
    expires_at = token_expires_at(auth_state)
    if expires_at is None or expires_at - time.time() > authenticator.token_refresh_margin:
        return True if expires_at is not None else None
    params = authenticator.build_refresh_token_request_params(auth_state["refresh_token"])
    try:
        token_info = await authenticator.get_token_info(None, params)
    except Exception as exc:  # the refresh token was revoked or expired: log in again
        authenticator.log.info("Refreshing the access token of %s failed (%s); a new login "
                               "is needed", user.name, type(exc).__name__)
        return False
    new_state = dict(auth_state)
    new_state.update(access_token=token_info["access_token"], token_response=token_info,
                     refresh_token=token_info.get("refresh_token") or auth_state["refresh_token"])
    if token_info.get("id_token"):
        new_state["id_token"] = token_info["id_token"]
    _record_expiry(authenticator, new_state)
    authenticator.log.info("Refreshed the access token of %s before expiry", user.name)
    groups = await authenticator.get_user_groups(new_state)
    return {"name": user.name, "auth_state": new_state, "groups": sorted(groups)}
