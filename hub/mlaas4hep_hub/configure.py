"""What ``jupyterhub_config.py`` does: read hub.yaml, gather secrets and discovery, apply."""

from __future__ import annotations

import os
from typing import Any

from .apply import apply_config
from .config import load_config
from .state import fetch_discovery, prepare_state

CONFIG_ENV = "MLAAS4HEP_HUB_CONFIG"


def configure(c: Any) -> None:
    """Configure the hub from the YAML file named by $MLAAS4HEP_HUB_CONFIG (or hub.yaml)."""
    path = os.environ.get(CONFIG_ENV, "hub.yaml")
    cfg = load_config(path)
    apply_config(cfg, c, discovery=fetch_discovery(cfg["iam"]["issuer"]),
                 secrets=prepare_state(cfg, config=path))
    if os.environ.get("DOCKER_HOST"):  # the submit service's jobs use the spawner's engine
        for service in c.JupyterHub.services:
            if service["name"] == "submit":
                service["environment"]["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
