"""Sign-in through the dev IAM in a real browser, groups, admin, fresh tokens in the
user's server, the bearer-token API, log hygiene and hub restarts."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import quote

import jwt
import requests

from ..browser import screenshot
from ..wizard.conftest import WIZARD_NOTEBOOK
from ..wizard.steps import run_wizard_notebook, train_in_wizard
from .conftest import AGENT_CLIENT, HUB_CLIENT_SECRET, Hub, sign_in
from .oidc_client import login_tokens, userinfo


def token_file(hub: Hub, user: str) -> Path:
    return hub.state / "homes" / user / ".mlaas4hep" / "bearer_token"


def server_pids(hub: Hub, user: str) -> list[int]:
    """Processes of jupyterhub-singleuser running in the user's home."""
    home = (hub.state / "homes" / user).resolve()
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if (proc.name.isdigit() and b"jupyterhub-singleuser" in (proc / "cmdline").read_bytes()
                    and Path(os.readlink(proc / "cwd")) == home):
                pids.append(int(proc.name))
        except OSError:
            continue
    return sorted(pids)


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_alice_signs_in_and_lands_in_jupyterlab_with_examples(make_hub, browser) -> None:
    hub = make_hub()
    page = sign_in(browser, hub, "alice", "alice-pass")
    page.wait_for_url("**/user/alice/lab**", timeout=90_000)
    page.get_by_text("Getting started.ipynb").first.wait_for(timeout=60_000)
    shot = screenshot(page, "alice-jupyterlab")
    assert shot.stat().st_size > 10_000
    assert (hub.state / "homes" / "alice" / "samples" / "uproot-HZZ.root").is_file()
    # alice (group cms/ml) is an admin: the admin page opens
    admin = page.goto(f"{hub.url}/hub/admin")
    assert admin is not None and admin.status == 200
    page.close()

    bob = sign_in(browser, hub, "bob", "bob-pass")
    bob.wait_for_url("**/user/bob/**", timeout=90_000)
    refused = bob.goto(f"{hub.url}/hub/admin")
    assert refused is not None and refused.status == 403
    bob.close()


def test_alice_trains_with_the_wizard_in_a_few_clicks(make_hub, browser) -> None:
    """Sign in, open the wizard notebook, Run All, Train: the samples are made and chosen."""
    hub = make_hub()
    page = sign_in(browser, hub, "alice", "alice-pass")
    page.wait_for_url("**/user/alice/lab**", timeout=90_000)
    page.goto(f"{hub.url}/user/alice/lab/tree/{quote(WIZARD_NOTEBOOK)}")
    run_wizard_notebook(page, "hub-wizard")
    train_in_wizard(page, "hub-wizard", epochs=1)
    home = hub.state / "homes" / "alice"
    assert len(list(home.glob("wizard-runs/*/output/model.keras"))) == 1
    assert (home / "samples" / "files.txt").is_file()
    page.close()


def test_eve_is_refused_at_login_with_the_reason(make_hub, browser) -> None:
    hub = make_hub()
    page = sign_in(browser, hub, "eve", "eve-pass")
    page.wait_for_load_state()
    text = page.content()
    assert "403" in text
    assert "not in a group allowed on this hub" in text and "cms" in text
    screenshot(page, "eve-refused")
    assert not (hub.state / "homes" / "eve").exists()
    page.close()


def test_token_file_in_server_is_valid_and_refreshed_before_expiry(make_hub, browser) -> None:
    hub = make_hub(token_ttl=60)
    page = sign_in(browser, hub, "alice", "alice-pass")
    page.wait_for_url("**/user/alice/lab**", timeout=90_000)
    path = token_file(hub, "alice")
    first = wait_for(lambda: path.exists() and path.read_text().strip(), 30, "token file")
    assert path.stat().st_mode & 0o777 == 0o600
    assert userinfo(hub.idp.issuer, first).json()["preferred_username"] == "alice"
    expires = jwt.decode(first, options={"verify_signature": False})["exp"]
    second = wait_for(lambda: (t := path.read_text().strip()) != first and t, 55,
                      "a refreshed token")
    assert time.time() < expires, "the file changed only after the old token expired"
    assert userinfo(hub.idp.issuer, second).status_code == 200
    page.close()


def test_bearer_token_gives_a_hub_api_token(make_hub) -> None:
    hub = make_hub()
    alice = login_tokens(hub.idp.issuer, AGENT_CLIENT, "alice", "alice-pass")
    answer = hub.hub_token(alice["access_token"])
    assert answer.status_code == 200, answer.text
    hub_token = answer.json()["token"]
    me = requests.get(f"{hub.url}/hub/api/user", timeout=10,
                      headers={"Authorization": f"token {hub_token}"})
    assert me.status_code == 200 and me.json()["name"] == "alice"


def test_bearer_refusals_say_why(make_hub) -> None:
    hub = make_hub()
    alice = login_tokens(hub.idp.issuer, AGENT_CLIENT, "alice", "alice-pass")["access_token"]
    claims = jwt.decode(alice, options={"verify_signature": False})
    header = jwt.get_unverified_header(alice)
    from cryptography.hazmat.primitives.asymmetric import rsa

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": header["kid"]})
    idp_key = jwt.PyJWK(_private_jwk(hub)).key
    expired = jwt.encode({**claims, "exp": int(time.time()) - 600, "iat": int(time.time()) - 700},
                         idp_key, algorithm="RS256", headers={"kid": header["kid"]})
    other_issuer = jwt.encode({**claims, "iss": "https://iam.elsewhere.example/"}, idp_key,
                              algorithm="RS256", headers={"kid": header["kid"]})
    eve = login_tokens(hub.idp.issuer, AGENT_CLIENT, "eve", "eve-pass")["access_token"]
    cases = [(forged, 401, "signature does not verify"), (expired, 401, "token expired"),
             (other_issuer, 401, "this hub trusts"), (eve, 403, "allowed groups: ['cms']"),
             ("not-a-jwt", 401, "not a JWT")]
    for token, status, message in cases:
        answer = hub.hub_token(token)
        assert answer.status_code == status, (message, answer.text)
        assert message in answer.json()["error"], answer.text
    missing = requests.post(f"{hub.url}/services/auth/hub-token", timeout=10)
    assert missing.status_code == 401 and "Authorization: Bearer" in missing.json()["error"]


def _private_jwk(hub: Hub) -> dict:
    import json

    keys = json.loads(hub.idp.keys_path.read_text())
    return keys["keys"][0] if "keys" in keys else keys


def test_logs_hold_no_client_secret_or_tokens(make_hub, browser) -> None:
    hub = make_hub()
    page = sign_in(browser, hub, "alice", "alice-pass")
    page.wait_for_url("**/user/alice/lab**", timeout=90_000)
    issued = login_tokens(hub.idp.issuer, AGENT_CLIENT, "alice", "alice-pass")
    hub_token = hub.hub_token(issued["access_token"]).json()["token"]
    stored = wait_for(lambda: token_file(hub, "alice").exists()
                      and token_file(hub, "alice").read_text().strip(), 30, "token file")
    for pid in server_pids(hub, "alice"):  # nor in the user server's environment
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert HUB_CLIENT_SECRET.encode() not in environ and b"BEARER_TOKEN=" not in environ
        assert b"BEARER_TOKEN_FILE=" in environ
    page.close()
    hub.stop()
    secrets = [HUB_CLIENT_SECRET, AGENT_CLIENT["client_secret"], issued["access_token"],
               issued["refresh_token"], issued["id_token"], hub_token, stored]
    assert "JupyterHub is now running" in hub.log.read_text()
    assert "POST /token" in hub.idp.log_path.read_text()
    for log in (hub.log, hub.idp.log_path):
        text = log.read_text()
        for secret in secrets:
            assert secret not in text, f"a secret appears in {log.name}"


def test_hub_restart_keeps_users_auth_state_and_servers(make_hub, browser) -> None:
    hub = make_hub(cleanup_servers=False)
    page = sign_in(browser, hub, "alice", "alice-pass")
    page.wait_for_url("**/user/alice/lab**", timeout=90_000)
    before = wait_for(lambda: token_file(hub, "alice").exists()
                      and token_file(hub, "alice").read_text().strip(), 30, "token file")
    page.close()
    server = server_pids(hub, "alice")
    assert server, "alice's server is not running"
    hub.stop()
    assert server_pids(hub, "alice") == server  # still running without the hub
    hub.start()
    issued = login_tokens(hub.idp.issuer, AGENT_CLIENT, "alice", "alice-pass")
    hub_token = hub.hub_token(issued["access_token"]).json()["token"]
    me = requests.get(f"{hub.url}/hub/api/user", timeout=10,
                      headers={"Authorization": f"token {hub_token}"}).json()
    assert me["name"] == "alice"
    assert me["servers"][""]["ready"] is True  # the server survived the restart
    # the auth service decrypts alice's auth_state again after the restart
    again = requests.get(f"{hub.url}/services/auth/token", timeout=30,
                         headers={"Authorization": f"token {hub_token}"})
    assert again.status_code == 200 and again.json()["access_token"] == before
