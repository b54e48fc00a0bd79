"""User servers in containers on a real Docker engine (started by the tests, host
networking on 127.0.0.1): the spawn form, limits, volumes, a Jupyter terminal running
workflow.py, persistence across restarts, and what is refused."""

from __future__ import annotations

import json
from typing import Any

from ..browser import screenshot
from .conftest import Hub, sign_in

RUN_WORKFLOW = ("cd ~ && mlaas4hep make-sample --out-dir samples --events 3000 && "
                "echo '{\"epochs\": 1, \"chunk_size\": 3000}' > quick.json && "
                "workflow.py --files=samples/files.txt --labels=samples/labels.txt "
                "--model=model.py --params=quick.json --out-dir=runs/first && echo WORKFLOW-DONE")


def xsrf(page: Any, path: str = "/hub/") -> str:
    """The XSRF cookie that the hub (or a user server, by ``path``) set."""
    cookies = [c for c in page.context.cookies()
               if c["name"].endswith("_xsrf") and c["path"].startswith(path)]
    assert cookies, f"no _xsrf cookie for {path}"
    return cookies[0]["value"]


def terminal(page: Any, hub: Hub, user: str, command: str, marker: str,
             timeout_ms: int = 240_000) -> str:
    """Run ``command`` in a new Jupyter terminal of the user's server; return its output."""
    base = f"{hub.url}/user/{user}"
    created = page.request.post(f"{base}/api/terminals",
                                headers={"X-XSRFToken": xsrf(page, f"/user/{user}/")})
    assert created.ok, created.text()
    name = created.json()["name"]
    ws_url = base.replace("http://", "ws://") + f"/terminals/websocket/{name}"
    return page.evaluate("""([url, command, marker, timeout]) => new Promise((ok, fail) => {
        const ws = new WebSocket(url); let out = "";
        const timer = setTimeout(() => fail(new Error("timeout: " + out.slice(-2000))), timeout);
        ws.onopen = () => ws.send(JSON.stringify(["stdin", command + "\\r"]));
        ws.onmessage = (e) => { const m = JSON.parse(e.data);
            if (m[0] === "stdout") { out += m[1];
                if (out.split(marker).length > 2) { clearTimeout(timer); ws.close(); ok(out); } } };
        ws.onerror = () => fail(new Error("websocket error"));
    })""", [ws_url, command, marker, timeout_ms])


def test_containers_from_the_spawn_form(make_hub, browser, dockerd, built_images):
    hub = make_hub(docker_host=dockerd.host)
    page = sign_in(browser, hub, "alice", "alice-pass")
    page.wait_for_url("**/hub/spawn**", timeout=30_000)
    assert "Select your desired image" in page.content()
    page.select_option("select[name=image]", "mlaas4hep/singleuser:dev")
    page.select_option("select[name=memory]", "2G")
    screenshot(page, "alice-spawn-form")
    page.get_by_role("button", name="Start").click()
    page.wait_for_url("**/user/alice/lab**", timeout=180_000)

    info = json.loads(dockerd.docker("inspect", "jupyter-alice").stdout)[0]
    assert info["HostConfig"]["Memory"] == 2 * 1024**3
    assert info["HostConfig"]["NetworkMode"] == "host" and not info["HostConfig"]["Privileged"]
    assert info["HostConfig"]["CapDrop"] == ["ALL"]
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    assert mounts["/home/jovyan"]["Name"] == "mlaas4hep-home-alice"
    assert info["Config"]["User"] not in ("", "root", "0")

    output = terminal(page, hub, "alice", RUN_WORKFLOW, "WORKFLOW-DONE")
    assert "test split:" in output
    # stop and start again: the outputs are still in the home volume
    headers = {"X-XSRFToken": xsrf(page), "Content-Type": "application/json"}
    assert page.request.delete(f"{hub.url}/hub/api/users/alice/server", headers=headers).ok
    started = page.request.post(f"{hub.url}/hub/api/users/alice/server", headers=headers,
                                data=json.dumps({"image": "mlaas4hep/singleuser:dev",
                                                 "memory": "2G"}))
    assert started.status in (201, 202), started.text()
    page.goto(f"{hub.url}/user/alice/lab")
    page.wait_for_url("**/user/alice/lab**", timeout=180_000)
    listing = dockerd.docker("exec", "jupyter-alice", "ls", "/home/jovyan/runs/first").stdout
    assert "metrics.json" in listing and "model.keras" in listing

    # bob cannot open alice's server
    bob = sign_in(browser, hub, "bob", "bob-pass")
    bob.wait_for_url("**/hub/spawn**", timeout=30_000)
    response = bob.goto(f"{hub.url}/user/alice/lab")
    assert response is not None and response.status == 403
    # crafted form posts: an image off the allowlist, memory above the cap
    for field, value, message in (("image", "evil/miner:latest", "is not offered"),
                                  ("memory", "512G", "is not offered")):
        form = {"image": "mlaas4hep/singleuser:dev", "memory": "2G", "cpus": "1",
                field: value, "_xsrf": xsrf(bob)}
        refused = bob.request.post(f"{hub.url}/hub/spawn", form=form)
        assert refused.status == 400, (field, refused.status)
        assert message in refused.text()
    containers = dockerd.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert "jupyter-bob" not in containers
