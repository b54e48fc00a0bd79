"""Local OpenID provider behaving like INDIGO IAM, for the hub's dev mode and tests."""

from .launcher import DEFAULT_CLIENT, DevIdP, ensure_installed, find_node

__all__ = ["DEFAULT_CLIENT", "DevIdP", "ensure_installed", "find_node"]
