"""hub.yaml: schema errors name the key; apply_config sets the traitlets we rely on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from traitlets.config import Config

from mlaas4hep_hub.apply import Secrets, apply_config
from mlaas4hep_hub.auth import groups_from_claims
from mlaas4hep_hub.config import ConfigError, load_config, validate_config

MINIMAL = {"iam": {"issuer": "https://iam.example.org/", "client_id": "hub",
                   "client_secret_file": "/etc/mlaas4hep/secret"}}
DISCOVERY = {"issuer": "https://iam.example.org/",
             "authorization_endpoint": "https://iam.example.org/authorize",
             "token_endpoint": "https://iam.example.org/token",
             "userinfo_endpoint": "https://iam.example.org/userinfo",
             "jwks_uri": "https://iam.example.org/jwk"}
SECRETS = Secrets(client_secret="s3cret", crypt_key="ab" * 32, cookie_secret_file="/s/cookie",
                  proxy_token="p" * 64)


def with_iam(**iam: object) -> dict:
    return {"iam": {**MINIMAL["iam"], **iam}}


@pytest.mark.parametrize(("raw", "message"), [
    (with_iam(allowed_group=["cms"]),
     "hub.yaml: iam.allowed_group: unknown key (did you mean 'allowed_groups'?)"),
    ({**MINIMAL, "spawnr": {}}, "hub.yaml: spawnr: unknown key (did you mean 'spawner'?)"),
    (with_iam(allowed_groups="cms"), "hub.yaml: iam.allowed_groups: must be array, got str"),
    (with_iam(auth_refresh_age="60"), "hub.yaml: iam.auth_refresh_age: must be integer"),
    ({"iam": {"issuer": "x", "client_id": "y"}},
     "hub.yaml: iam.client_secret_file: required key is missing"),
    ({}, "hub.yaml: iam: required key is missing"),
    ({**MINIMAL, "spawner": {"kind": "k8s"}}, "hub.yaml: spawner.kind: 'k8s' is not one of"),
    ({**MINIMAL, "spawner": {"environment": {"X509_CERT_DIR": 1}}},
     "hub.yaml: spawner.environment.X509_CERT_DIR: must be string, got int"),
])
def test_schema_errors_name_the_key(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate_config(raw)
    assert str(err.value).startswith(message)


def test_malformed_yaml_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "hub.yaml"
    path.write_text("iam:\n  issuer: [x\n")
    with pytest.raises(ConfigError, match=rf"{path}:3:1: malformed YAML"):
        load_config(path)


def test_defaults_are_filled_in() -> None:
    cfg = validate_config(MINIMAL)
    assert cfg["iam"]["scopes"] == ["openid", "profile", "email", "offline_access",
                                    "wlcg.groups"]
    assert cfg["hub"]["bind_url"] == "http://127.0.0.1:8000"
    assert cfg["spawner"]["kind"] == "local"


def test_apply_config_sets_iam_login_from_discovery(tmp_path: Path) -> None:
    cfg = validate_config(with_iam(allowed_groups=["/cms"], admin_groups=["/cms/ml"]))
    c = Config()
    apply_config(cfg, c, discovery=DISCOVERY, secrets=SECRETS)
    a = c.IAMAuthenticator
    assert c.JupyterHub.authenticator_class == "mlaas4hep_hub.auth.IAMAuthenticator"
    assert (a.authorize_url, a.token_url, a.userdata_url) == (
        DISCOVERY["authorization_endpoint"], DISCOVERY["token_endpoint"],
        DISCOVERY["userinfo_endpoint"])
    assert a.scope == ["openid", "profile", "email", "offline_access", "wlcg.groups"]
    assert a.username_claim == "preferred_username"
    assert a.allowed_groups == {"cms"} and a.admin_groups == {"cms/ml"}
    assert a.manage_groups and a.enable_auth_state and a.refresh_pre_spawn
    assert a.oauth_callback_url == "http://127.0.0.1:8000/hub/oauth_callback"
    assert c.CryptKeeper["keys"] == [SECRETS.crypt_key.encode()]
    assert c.JupyterHub.db_url == "sqlite:///hub-state/jupyterhub.sqlite"
    service = c.JupyterHub.services[0]
    assert service["name"] == "auth" and "--allowed-group=cms" in service["command"]
    # the client secret goes to the authenticator only: not to services or user servers
    assert "s3cret" not in repr(c.JupyterHub.services) and "s3cret" not in repr(c.LocalSpawner)


def test_spawner_environment_reaches_user_servers_of_both_kinds() -> None:
    env = {"X509_CERT_DIR": "/etc/grid-security/certificates"}
    for kind, spawner in (("local", "LocalSpawner"), ("docker", "DockerHostSpawner")):
        c = Config()
        apply_config(validate_config({**MINIMAL, "spawner": {"kind": kind, "environment": env}}),
                     c, discovery=DISCOVERY, secrets=SECRETS)
        assert c[spawner].environment == env, kind


def test_apply_config_is_pure() -> None:
    cfg = validate_config(MINIMAL)
    a, b = Config(), Config()
    apply_config(cfg, a, discovery=DISCOVERY, secrets=SECRETS)
    apply_config(cfg, b, discovery=DISCOVERY, secrets=SECRETS)
    assert a == b and cfg == validate_config(MINIMAL)


def test_groups_merge_claims_and_strip_slashes() -> None:
    info = {"groups": ["cms", "cms/ml"], "wlcg.groups": ["/cms", "/cms/ml", "/cms/higgs"]}
    assert groups_from_claims(info, ["groups", "wlcg.groups"]) == ["cms", "cms/ml",
                                                                   "cms/higgs"]
    assert groups_from_claims({"groups": "atlas"}, ["groups"]) == ["atlas"]


def test_example_config_in_docs_is_valid() -> None:
    example = Path(__file__).parents[2] / "hub" / "hub.example.yaml"
    validate_config(yaml.safe_load(example.read_text()), str(example))
