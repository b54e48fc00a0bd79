"""``mlaas4hep-hub``: run the hub in dev mode, check a config file, list its keys."""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from .config import SCHEMA, ConfigError, load_config
from .configure import CONFIG_ENV

HUB_DIR = Path(__file__).resolve().parents[1]
DEMO_USERS = (("alice", "alice-pass", "cms, cms/ml", "admin"),
              ("bob", "bob-pass", "cms", "user"),
              ("eve", "eve-pass", "atlas", "refused: not in an allowed group"))


def keys_text(schema: dict[str, Any] = SCHEMA, prefix: str = "") -> str:
    """Every configuration key with its type, default and description."""
    lines = []
    for key, sub in schema["properties"].items():
        name = f"{prefix}{key}"
        if "properties" in sub:
            lines += [f"{name}:  {sub['description']}", keys_text(sub, name + ".")]
            continue
        default = sub.get("default")
        shown = "" if default in (None, [], "") else f" [default: {default}]"
        kind = sub["type"] if isinstance(sub["type"], str) else sub["type"][0]
        lines.append(f"  {name} ({kind}){shown}")
        lines.append(textwrap.fill(sub["description"], 79, initial_indent="      ",
                                   subsequent_indent="      "))
    return "\n".join(lines)


def docker_ready(image: str = "mlaas4hep/singleuser:dev") -> str | None:
    """Why the Docker kind cannot be used here (None when it can)."""
    docker = shutil.which("docker")
    if docker is None:
        return "no docker command"
    try:
        subprocess.run([docker, "image", "inspect", image], capture_output=True, timeout=20,
                       check=True)
    except (OSError, subprocess.SubprocessError):
        return f"no Docker engine answering, or image {image} not built (make images)"
    return None


def dev_config(state: Path, issuer: str, port: int, examples: Path | None,
               token_poll: int, kind: str = "local") -> dict[str, Any]:
    """The hub.yaml of dev mode."""
    return {
        "hub": {"public_url": f"http://127.0.0.1:{port}", "bind_url": f"http://127.0.0.1:{port}",
                "state_dir": str(state / "hub"), "cleanup_servers": True,
                "proxy_command": str(HUB_DIR / "proxy/node_modules/.bin/configurable-http-proxy")},
        "iam": {"issuer": issuer, "client_id": "mlaas4hep-hub",
                "client_secret_file": str(state / "iam-client-secret"),
                "allowed_groups": ["cms"], "admin_groups": ["cms/ml"],
                "auth_refresh_age": 10, "token_refresh_margin": 30},
        "spawner": {"kind": kind, "home_template": str(state / "homes" / "{username}"),
                    "examples_dir": str(examples) if examples else None,
                    "token_poll_interval": token_poll},
    }


def run_dev(args: argparse.Namespace) -> int:
    """Dev IAM + hub on 127.0.0.1 until Ctrl-C."""
    from .devidp import DevIdP

    state = Path(args.state_dir).resolve()
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret_file = state / "iam-client-secret"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_hex(24))
        secret_file.chmod(0o600)
    client = {"client_id": "mlaas4hep-hub", "client_secret": secret_file.read_text().strip(),
              "redirect_uris": [f"http://127.0.0.1:{args.port}/hub/oauth_callback"]}
    with DevIdP(state / "idp", port=args.idp_port, clients=[client],
                access_token_ttl=args.token_ttl) as idp:
        config = state / "hub.yaml"
        examples = Path(args.examples).resolve() if args.examples else None
        no_docker = docker_ready()
        kind = "local" if no_docker else "docker"
        config.write_text(yaml.safe_dump(dev_config(state, idp.issuer, args.port, examples,
                                                    max(5, min(30, args.token_ttl // 4)),
                                                    kind)))
        load_config(config)
        env = {**os.environ, CONFIG_ENV: str(config)}
        jupyterhub = Path(sys.executable).parent / "jupyterhub"
        # SIGINT and SIGTERM stop everything, also when started with SIGINT ignored (a
        # background job, nohup): the hub, started after this, then takes SIGINT too
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _interrupt)
        hub = subprocess.Popen([str(jupyterhub), "-f", str(HUB_DIR / "jupyterhub_config.py")],
                               cwd=state, env=env)
        try:
            if not _wait_until_up(f"http://127.0.0.1:{args.port}/hub/api/", hub):
                return hub.wait()
            _announce(args.port, idp.issuer, no_docker, state)
            return hub.wait()
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM, while the hub starts or runs
            hub.send_signal(signal.SIGINT)
            hub.wait(timeout=30)
            return 0


def _announce(port: int, issuer: str, no_docker: str | None, state: Path) -> None:
    """Say where the dev hub is and who can log in."""
    servers = (f"local user servers: {no_docker}" if no_docker
               else "user servers in Docker containers")
    print(f"\nMLaaS4HEP Hub (dev mode) at http://127.0.0.1:{port}/  "
          f"(dev IAM at {issuer}; {servers}; SQLite in {state})")
    print("Demo logins:")
    for user, password, groups, role in DEMO_USERS:
        print(f"  {user} / {password}   groups: {groups}   ({role})")
    print("Ctrl-C stops everything.\n", flush=True)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _wait_until_up(url: str, hub: subprocess.Popen, timeout: float = 120) -> bool:
    """Wait until the hub answers at ``url``; False if it exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and hub.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            time.sleep(0.5)
    return hub.poll() is None


def run_check(args: argparse.Namespace) -> int:
    """Validate a hub.yaml and report the first mistake."""
    load_config(args.config)
    print(f"{args.config}: valid")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mlaas4hep-hub``."""
    parser = argparse.ArgumentParser(prog="mlaas4hep-hub", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="run a dev IAM and the hub on 127.0.0.1 "
                              "(what `make up` runs)")
    dev.add_argument("--state-dir", default=".hub-dev", help="folder for all dev state")
    dev.add_argument("--port", type=int, default=8000, help="hub port on 127.0.0.1")
    dev.add_argument("--idp-port", type=int, default=9000, help="dev IAM port on 127.0.0.1")
    dev.add_argument("--examples", help="folder copied into each new user's home")
    dev.add_argument("--token-ttl", type=int, default=3600,
                     help="access token lifetime (s) at the dev IAM")
    check = commands.add_parser("check", help="validate a hub.yaml")
    check.add_argument("config")
    commands.add_parser("keys", help="list every hub.yaml key")
    args = parser.parse_args(argv)
    if args.command == "keys":
        print(keys_text())
        return 0
    try:
        return {"dev": run_dev, "check": run_check}[args.command](args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
