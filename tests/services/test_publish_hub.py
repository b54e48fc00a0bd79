"""The inference service from a browser and from the wizard, on a real hub with the dev IAM
and chromium: Publish model in the user's server (name, curl example, errors), the hub's
OAuth sign-in for service pages, and each user seeing only their own models."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests

from ..browser import screenshot
from ..hub.conftest import AGENT_CLIENT, Hub, hub_factory, sign_in
from ..hub.oidc_client import login_tokens
from ..wizard.conftest import WIZARD_NOTEBOOK
from ..wizard.steps import run_wizard_notebook, train_in_wizard


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with hub_factory(tmp_path_factory) as make:
        yield make()


def iam_token(hub: Hub, user: str) -> str:
    """An IAM access token, as oidc-agent gets it."""
    return login_tokens(hub.idp.issuer, AGENT_CLIENT, user, f"{user}-pass")["access_token"]


def signed_in(browser: Any, hub: Hub, user: str) -> Any:
    """A page of ``user`` signed in to the hub (their server may still be starting)."""
    page = sign_in(browser, hub, user, f"{user}-pass")
    page.wait_for_url(lambda url: url.startswith(f"{hub.url}/") and "/login" not in url
                      and "oauth" not in url, timeout=60_000)
    return page


def open_service(page: Any, hub: Hub, path: str) -> tuple[int, Any]:
    """Open a service page as the browser does; its status and JSON body."""
    response = page.goto(f"{hub.url}/services/inference/{path}")
    assert page.url == f"{hub.url}/services/inference/{path}", page.url
    return response.status, json.loads(page.locator("body").inner_text())


def test_wizard_publishes_the_run_and_its_curl_example_scores_an_event(
        hub: Hub, browser: Any) -> None:
    page = signed_in(browser, hub, "alice")
    page.wait_for_url("**/user/alice/lab**", timeout=120_000)
    page.goto(f"{hub.url}/user/alice/lab/tree/{quote(WIZARD_NOTEBOOK)}")
    run_wizard_notebook(page, "publish")
    train_in_wizard(page, "publish", epochs=1)

    name = page.locator(".mlaas4hep-publish-name input")
    assert re.fullmatch(r"run-\d{8}-\d{6}(-\d+)?", name.input_value())  # the run folder
    name.fill("no spaces allowed")
    page.locator(".mlaas4hep-publish").click()
    refused = page.locator(".mlaas4hep-error", has_text="refused upload (HTTP 400)")
    refused.wait_for(timeout=60_000)
    assert "use letters, digits" in refused.inner_text()

    name.fill("tth-wizard")
    page.locator(".mlaas4hep-publish").click()
    page.get_by_text("published as 'tth-wizard' (owner alice)").wait_for(timeout=120_000)
    screenshot(page, "publish-5-published")
    example = page.locator(".mlaas4hep-curl").inner_text()
    assert f"S={hub.url}/services/inference" in example  # the hub's public address

    # the example, run as shown (with alice's IAM token), scores one event
    lines = [line for line in example.splitlines() if not line.startswith("TOKEN=")]
    done = subprocess.run(["bash", "-ec", "\n".join(lines)], capture_output=True, text=True,
                          env={"TOKEN": iam_token(hub, "alice"), "PATH": "/usr/bin:/bin"},
                          timeout=120)
    assert done.returncode == 0, done.stderr
    decoder, text = json.JSONDecoder(), done.stdout  # curl's two answers, back to back
    params, end = decoder.raw_decode(text)
    scored = decoder.raw_decode(text[end:].lstrip())[0]
    assert params["model"] == "tth-wizard" and params["task"] == "binary"
    assert scored["model"] == "tth-wizard" and 0 <= scored["score"] <= 1, scored
    home = hub.state / "homes" / "alice"
    published = hub.state / "hub" / "services" / "models" / "alice" / "tth-wizard"
    run = next(home.glob("wizard-runs/*/output/metrics.json")).parent
    assert (published / "model.keras").read_bytes() == (run / "model.keras").read_bytes()
    page.close()


def test_service_pages_sign_in_through_the_hub_and_show_only_the_users_models(
        hub: Hub, browser: Any, bundle_tgz: bytes) -> None:
    up = requests.post(f"{hub.url}/services/inference/upload?name=browser-alice",
                       data=bundle_tgz, timeout=120,
                       headers={"Authorization": f"Bearer {iam_token(hub, 'alice')}"})
    assert up.status_code == 201, up.text

    anonymous = browser.new_page()
    anonymous.goto(f"{hub.url}/services/inference/models")
    assert anonymous.url.startswith(f"{hub.url}/hub/login"), anonymous.url
    anonymous.close()

    alice = signed_in(browser, hub, "alice")
    status, body = open_service(alice, hub, "models")
    assert status == 200
    assert "browser-alice" in [m["model"] for m in body["models"]]
    status, body = open_service(alice, hub, "params/browser-alice")
    assert status == 200 and body["task"] == "binary"
    screenshot(alice, "service-models-alice")

    bob = signed_in(browser, hub, "bob")
    status, body = open_service(bob, hub, "models")
    assert status == 200
    assert [m for m in body["models"] if m["owner"] == "alice"] == []
    status, body = open_service(bob, hub, "params/browser-alice")
    assert status == 404 and "no model 'browser-alice'" in body["error"]
    status, body = open_service(bob, hub, "params/alice/browser-alice")
    assert status == 404
    alice.close()
    bob.close()
