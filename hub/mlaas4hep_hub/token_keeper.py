"""Jupyter server extension keeping ``$BEARER_TOKEN_FILE`` fresh in a user server.

Every ``MLAAS4HEP_TOKEN_POLL`` seconds it asks the hub's auth service for the
user's current IAM access token (authenticating with the server's own
``JUPYTERHUB_API_TOKEN``; the hub refreshes the token before it expires) and
replaces the file atomically when the token changed. The file is 0600.
Code reading the token follows WLCG bearer token discovery and re-reads the
file when it changes.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "mlaas4hep_hub.token_keeper"}]


def write_private(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text``, readable by the owner only."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class TokenKeeper:
    """Fetches the user's access token and writes it to a file, on a timer."""

    def __init__(self, url: str, path: Path, api_token: str, interval: float, log: Any):
        self.url, self.path, self.interval, self.log = url, path, interval, log
        self._headers = {"Authorization": f"token {api_token}"}
        self._current = ""

    async def refresh(self) -> None:
        """Fetch once and write the file if the token changed."""
        response = await AsyncHTTPClient().fetch(self.url, headers=self._headers)
        token = json.loads(response.body)["access_token"]
        if token != self._current:
            write_private(self.path, token + "\n")
            self._current = token
            self.log.info("mlaas4hep: wrote a fresh IAM access token to %s", self.path)

    async def run(self) -> None:
        """Refresh forever; errors are logged (without the token) and retried."""
        while True:
            try:
                await self.refresh()
            except HTTPClientError as exc:
                self.log.warning("mlaas4hep: could not fetch the IAM token (HTTP %s)", exc.code)
            except Exception as exc:
                self.log.warning("mlaas4hep: could not fetch the IAM token: %s",
                                 type(exc).__name__)
            await asyncio.sleep(self.interval)


def _load_jupyter_server_extension(serverapp: Any) -> None:
    env = os.environ
    needed = ("MLAAS4HEP_TOKEN_URL", "BEARER_TOKEN_FILE", "JUPYTERHUB_API_TOKEN")
    if not all(env.get(k) for k in needed):
        serverapp.log.info("mlaas4hep: no hub token service configured; token file not kept")
        return
    keeper = TokenKeeper(env["MLAAS4HEP_TOKEN_URL"], Path(env["BEARER_TOKEN_FILE"]),
                         env["JUPYTERHUB_API_TOKEN"],
                         float(env.get("MLAAS4HEP_TOKEN_POLL", "30")), serverapp.log)
    serverapp.io_loop.add_callback(keeper.run)
