"""The hub's one YAML configuration file: schema, defaults, validation.

Operators (and the Ansible role) write ``hub.yaml``; :func:`load_config`
checks it against :data:`SCHEMA` and fills in defaults, and
:func:`mlaas4hep_hub.apply.apply_config` turns it into traitlets settings.
Every mistake is a :class:`ConfigError` naming the key, e.g.
``hub.yaml: iam.allowed_group: unknown key (did you mean 'allowed_groups'?)``.
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

import jsonschema
import yaml


class ConfigError(Exception):
    """A mistake in the hub configuration file, naming the key."""


def _str(description: str, default: Any = None, **extra: Any) -> dict[str, Any]:
    kind = "string" if default is not None else ["string", "null"]
    return {"type": kind, "description": description, "default": default, **extra}


def _int(description: str, default: int, minimum: int = 0) -> dict[str, Any]:
    return {"type": "integer", "description": description, "default": default,
            "minimum": minimum}


def _strings(description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "description": description,
            "default": []}


def _section(description: str, properties: dict[str, Any],
             required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "description": description, "properties": properties,
            "additionalProperties": False, "required": list(required), "default": {}}


SCHEMA: dict[str, Any] = _section("MLaaS4HEP Hub configuration", {
    "hub": _section("The hub process", {
        "public_url": _str("URL users open, e.g. https://mlaas.example.org", format="uri"),
        "bind_url": _str("where the proxy listens", "http://127.0.0.1:8000"),
        "hub_bind_url": _str("where the hub listens (behind the proxy)",
                             "http://127.0.0.1:8081"),
        "state_dir": _str("folder for the database, cookie secret, crypt key and proxy "
                          "token (created 0700)", "hub-state"),
        "db_url": _str("database URL; default: SQLite in state_dir"),
        "proxy_command": _str("configurable-http-proxy executable; default: on PATH"),
        "proxy_api_url": _str("the proxy's REST API (loopback)", "http://127.0.0.1:8001"),
        "ssl_cert": _str("TLS certificate (PEM) the proxy serves on bind_url (then https://)"),
        "ssl_key": _str("private key (PEM, chmod 600) of ssl_cert"),
        "cleanup_servers": {"type": "boolean", "default": False,
                            "description": "stop user servers when the hub stops (false: "
                                           "servers keep running across hub restarts)"},
        "log_level": _str("hub log level", "INFO",
                          enum=["DEBUG", "INFO", "WARNING", "ERROR"]),
    }),
    "iam": _section("The INDIGO IAM (OpenID Connect) provider", {
        "issuer": _str("issuer URL; endpoints are read from its "
                       "/.well-known/openid-configuration"),
        "client_id": _str("client id registered at IAM"),
        "client_secret_file": _str("file holding the client secret (never put the secret "
                                   "itself in this file)"),
        "scopes": {**_strings("scopes requested at login"),
                   "default": ["openid", "profile", "email", "offline_access",
                               "wlcg.groups"]},
        "username_claim": _str("claim giving the JupyterHub user name", "preferred_username"),
        "groups_claims": {**_strings("claims holding groups; a leading '/' is stripped "
                                     "(/cms/ml -> cms/ml)"),
                          "default": ["groups", "wlcg.groups"]},
        "allowed_groups": _strings("users in none of these groups are refused at login "
                                   "(empty: everyone who can sign in at IAM)"),
        "admin_groups": _strings("members of these groups are hub admins"),
        "login_service": _str("name on the login button", "IAM"),
        "auth_refresh_age": _int("seconds between refreshes of a user's auth state", 60, 1),
        "token_refresh_margin": _int("refresh the access token this many seconds before it "
                                     "expires", 120, 1),
        "bearer_audiences": _strings("accepted 'aud' values of IAM access tokens sent as "
                                     "Authorization: Bearer (empty: any audience)"),
        "bearer_clients": _strings("accepted 'azp'/'client_id' of bearer tokens (empty: any "
                                   "client of the issuer)"),
    }, required=("issuer", "client_id", "client_secret_file")),
    "spawner": _section("User servers", {
        "kind": _str("'local' (processes on this machine) or 'docker'", "local",
                     enum=["local", "docker"]),
        "default_url": _str("page a server opens on", "/lab"),
        "home_template": _str("home folder of each user (local kind); {username} is "
                              "replaced", "hub-state/homes/{username}"),
        "examples_dir": _str("folder copied into each new home (example notebooks, sample "
                             "data)"),
        "start_timeout": _int("seconds a server may take to start", 120, 10),
        "token_poll_interval": _int("seconds between checks of the access token by the "
                                    "user's server", 30, 1),
        "environment": {"type": "object", "additionalProperties": {"type": "string"},
                        "description": "extra environment of every user server, e.g. "
                                       "{X509_CERT_DIR: /etc/grid-security/certificates} "
                                       "(the CAs the XRootD client checks storage elements "
                                       "against); BEARER_TOKEN is never passed",
                        "default": {}},
        "docker": _section("Docker kind: what the spawn form offers", {
            "images": {"type": "object", "additionalProperties": {"type": "string"},
                       "description": "images users may choose: {image: description}",
                       "default": {"mlaas4hep/singleuser:dev": "MLaaS4HEP (TensorFlow CPU)"}},
            "memory_choices": {**_strings("memory limits offered (those above the host's "
                                          "memory are dropped)"),
                               "default": ["2G", "4G", "8G"]},
            "cpu_choices": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0},
                            "description": "CPU limits offered (capped at the host's cores)",
                            "default": [1, 2]},
            "gpu_devices": {**_strings("NVIDIA GPU indices users may get (default: all the "
                                       "host has; each running user gets a different one)"),
                            "default": None, "type": ["array", "null"]},
            "data_path": _str("host folder mounted read-only at /data in every container"),
            "volume_template": _str("name of each user's home volume",
                                    "mlaas4hep-home-{username}"),
        }),
    }),
    "services": _section("Hub services", {
        "bearer_token_ttl": _int("lifetime (s) of the hub API tokens given for an IAM "
                                 "bearer token", 3600, 60),
        "auth_port": _int("loopback port of the auth service", 10101, 1),
        "idle_timeout": _int("stop servers idle this many seconds (0: never)", 3600, 0),
        "inference_port": _int("loopback port of the inference service "
                               "(/services/inference/)", 10102, 1),
        "inference_processes": _int("processes of the inference service, each serving on "
                                    "its own core (0: one per core)", 0, 0),
        "submit_port": _int("loopback port of the submit service (/services/submit/)",
                            10103, 1),
        "data_dir": _str("folder for published models and submitted jobs; default: "
                         "services/ in state_dir"),
        "max_upload_mb": _int("largest model upload (unpacked) in MiB", 512, 1),
        "job_max_memory": _str("most memory a submitted job may ask for (Docker limit)", "4G",
                               pattern=r"^[0-9]+(\.[0-9]+)?[KMG]$"),
        "job_max_cpus": {"type": "number", "exclusiveMinimum": 0, "default": 2,
                         "description": "most CPUs a submitted job may ask for (Docker "
                                        "limit)"},
    }),
}, required=("iam",))


def _defaults(schema: dict[str, Any], value: Any) -> Any:
    if "properties" not in schema:
        return value
    value = {} if value is None else value
    if not isinstance(value, dict):
        return value
    out = dict(value)
    for key, sub in schema["properties"].items():
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
        if key in out:
            out[key] = _defaults(sub, out[key])
    return out


def _message(error: jsonschema.ValidationError, where: str) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        unknown = sorted(set(error.instance) - set(known))
        key = f"{path}.{unknown[0]}" if path else unknown[0]
        close = difflib.get_close_matches(unknown[0], list(known), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"{where}: {key}: unknown key{hint}"
    if error.validator == "required":
        missing = error.message.split("'")[1]
        key = f"{path}.{missing}" if path else missing
        return f"{where}: {key}: required key is missing"
    if error.validator == "type":
        expected = error.validator_value
        expected = expected if isinstance(expected, str) else " or ".join(expected)
        return (f"{where}: {path}: must be {expected}, got "
                f"{type(error.instance).__name__} {error.instance!r}")
    return f"{where}: {path}: {error.message}"


def validate_config(raw: Any, where: str = "hub.yaml") -> dict[str, Any]:
    """Check ``raw`` against the schema and return it with defaults filled in."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of sections at the top level")
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(raw), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError(_message(errors[0], where))
    return _defaults(SCHEMA, raw)


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and validate ``hub.yaml``."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: malformed YAML: {getattr(exc, 'problem', exc)}") from None
    return validate_config(raw, str(path))
