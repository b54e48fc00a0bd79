"""User servers as local processes (dev mode), and what every spawner shares:
the IAM token kept fresh in a file.

Every user server gets ``BEARER_TOKEN_FILE`` (WLCG bearer token discovery)
and a server extension (:mod:`mlaas4hep_hub.token_keeper`) that keeps the
file fresh from the hub's auth service. ``BEARER_TOKEN`` is never set.
Local servers all run as the hub's system user: use them for development
and demos, not production (see :mod:`mlaas4hep_hub.docker_spawner`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Dict, HasTraits, Integer, Unicode

TOKEN_FILE = ".mlaas4hep/bearer_token"


class TokenFileMixin(HasTraits):
    """Environment and server-extension arguments for the token file."""

    token_url = Unicode(
        "", config=True,
        help="URL of the auth service's /token endpoint, as the user server reaches it.")
    token_poll_interval = Integer(
        30, config=True, help="Seconds between token checks by the user server.")
    service_env = Dict(
        Unicode(), config=True,
        help="Environment naming the hub's services for the user server (e.g. "
             "MLAAS4HEP_INFERENCE_URL, which the wizard's Publish uses).")

    def token_env(self, env: dict[str, Any], token_file: str) -> dict[str, Any]:
        """``env`` with the token file settings and the service URLs (and without
        BEARER_TOKEN)."""
        env.pop("BEARER_TOKEN", None)
        env.update(self.service_env)
        env["BEARER_TOKEN_FILE"] = token_file
        env["MLAAS4HEP_TOKEN_URL"] = self.token_url
        env["MLAAS4HEP_TOKEN_POLL"] = str(self.token_poll_interval)
        return env

    def token_keeper_args(self) -> list[str]:
        """Arguments enabling the token keeper extension in jupyterhub-singleuser."""
        return ["--ServerApp.jpserver_extensions", "mlaas4hep_hub.token_keeper=True"]


class LocalSpawner(TokenFileMixin, SimpleLocalProcessSpawner):
    """SimpleLocalProcessSpawner with example files and a fresh IAM token file."""

    examples_dir = Unicode(
        "", config=True,
        help="Folder copied into a user's home the first time their server starts "
             "(example notebooks, sample data). Empty: nothing is copied.")

    def _prepare_home(self) -> Path:
        home = Path(self.home_dir).resolve()
        first_start = not home.exists()
        home.mkdir(parents=True, exist_ok=True)
        (home / TOKEN_FILE).parent.mkdir(mode=0o700, exist_ok=True)
        if first_start and self.examples_dir:
            shutil.copytree(self.examples_dir, home, dirs_exist_ok=True)
            self.log.info("Copied %s into the new home %s", self.examples_dir, home)
        return home

    def get_env(self) -> dict[str, Any]:
        env = super().get_env()
        return self.token_env(env, str(self._prepare_home() / TOKEN_FILE))

    def get_args(self) -> list[str]:
        args = [*super().get_args(), *self.token_keeper_args()]
        if os.geteuid() == 0:  # dev mode started as root: servers run as the hub's user
            args.append("--allow-root")
        return args
