"""The inference and submit services behind a real hub and the dev IAM: upload a training
output, predict with JSON and on a ROOT file (the framework's own scores), IAM bearer and
hub tokens, 401/403/404, malicious uploads, a job that survives a restart."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import numpy as np
import pytest
import requests
import uproot

from mlaas4hep.services.arrays import CONTENT_TYPE, pack_arrays
from mlaas4hep.services.bundle import ModelBundle
from mlaas4hep.services.client import InferenceService

from ..hub.conftest import AGENT_CLIENT, Hub, hub_factory
from ..hub.oidc_client import login_tokens
from .test_bundle import framework_scores, rows_of
from .test_store import archive

MODELS = Path(__file__).resolve().parents[2] / "mlaas4hep" / "examples" / "models"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with hub_factory(tmp_path_factory) as make:
        yield make()


@pytest.fixture(scope="module")
def tokens(hub: Hub) -> dict[str, str]:
    """IAM access tokens of alice, bob (cms) and eve (atlas), as oidc-agent gets them."""
    return {user: login_tokens(hub.idp.issuer, AGENT_CLIENT, user, f"{user}-pass")
            ["access_token"] for user in ("alice", "bob", "eve")}


def call(hub: Hub, method: str, service: str, path: str, token: str | None = None,
         scheme: str = "Bearer", headers_extra: dict[str, str] | None = None, **kwargs
         ) -> requests.Response:
    headers = {"Authorization": f"{scheme} {token}"} if token else {}
    headers.update(headers_extra or {})
    deadline = time.monotonic() + 60
    while True:  # a service (re)started by the hub may take a moment to listen
        answer = requests.request(method, f"{hub.url}/services/{service}/{path}",
                                  headers=headers, timeout=120, **kwargs)
        if answer.status_code not in (502, 503) or time.monotonic() > deadline:
            return answer
        time.sleep(0.5)


def test_upload_then_predict_with_json_and_on_a_root_file(
        hub: Hub, tokens: dict[str, str], bundle_tgz: bytes, trained: Path,
        samples: Path) -> None:
    alice = tokens["alice"]
    up = call(hub, "POST", "inference", "upload?name=tth", alice, data=bundle_tgz)
    assert up.status_code == 201, up.text
    assert up.json()["owner"] == "alice"
    listed = call(hub, "GET", "inference", "models", alice).json()["models"]
    assert [m["model"] for m in listed] == ["tth"]
    info = call(hub, "GET", "inference", "params/tth", alice).json()
    local = ModelBundle(trained)
    assert info["keys"] == local.keys and info["task"] == "binary"

    signal = samples / "signal.root"
    picked = np.arange(40)
    rows = rows_of(signal, local.keys, picked)
    expected = local.predict_rows(local.keys, rows)
    batch = call(hub, "POST", "inference", "json", alice,
                 json={"model": "tth", "keys": local.keys, "rows": rows}).json()
    np.testing.assert_allclose(batch["scores"], expected.scores, rtol=1e-6)
    assert batch["passes_cuts"] == expected.passes_cuts.tolist()
    columns = [list(column) for column in zip(*rows, strict=True)]
    by_column = call(hub, "POST", "inference", "json", alice,
                     json={"model": "tth", "keys": local.keys, "columns": columns}).json()
    assert by_column["scores"] == batch["scores"]
    assert by_column["passes_cuts"] == batch["passes_cuts"]
    binary = call(hub, "POST", "inference", "arrays?model=tth", alice,
                  data=pack_arrays(dict(zip(local.keys, columns, strict=True))),
                  headers_extra={"Content-Type": CONTENT_TYPE})
    assert binary.status_code == 200, binary.text
    assert binary.json()["scores"] == batch["scores"]
    assert binary.json()["passes_cuts"] == batch["passes_cuts"]
    unnamed = call(hub, "POST", "inference", "arrays", alice, data=b"PK")
    assert unnamed.status_code == 400 and "arrays?model=NAME" in unnamed.json()["error"]
    one = call(hub, "POST", "inference", "json", alice,
               json={"model": "tth", "keys": local.keys, "values": rows[3]}).json()
    assert one["score"] == pytest.approx(float(expected.scores[3]), rel=1e-6)

    home = hub.state / "homes" / "alice"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(signal, home / "signal.root")
    answer = call(hub, "POST", "inference", "predict/root", alice,
                  json={"model": "tth", "file": "signal.root"})
    assert answer.status_code == 200, answer.text
    native = framework_scores(local, trained, signal)
    np.testing.assert_allclose(answer.json()["scores"], native, rtol=1e-4, atol=1e-5)
    with uproot.open(signal) as f:
        assert len(answer.json()["entries"]) < f["events"].num_entries  # cuts applied

    outside = call(hub, "POST", "inference", "predict/root", alice,
                   json={"model": "tth", "file": str(signal)})
    assert outside.status_code == 400 and "not found in your home" in outside.json()["error"]
    bad = call(hub, "POST", "inference", "json", alice,
               json={"model": "tth", "keys": ["nJet"], "values": [1]})
    assert bad.status_code == 400 and "did you mean 'nJets'" in bad.json()["error"]

    # a notebook or script with a hub API token (here from the auth service) works too
    hub_token = hub.hub_token(alice).json()["token"]
    mine = call(hub, "GET", "inference", "models", hub_token, scheme="token")
    assert mine.status_code == 200 and mine.json()["models"][0]["model"] == "tth"
    service = InferenceService(f"{hub.url}/services/inference/", hub_token, hub.url)
    from_notebook = service.predict("tth", dict(zip(local.keys, columns, strict=True)))
    assert from_notebook["scores"] == batch["scores"]


def test_other_users_models_are_not_found_and_shared_ones_not_theirs_to_delete(
        hub: Hub, tokens: dict[str, str], bundle_tgz: bytes) -> None:
    alice, bob = tokens["alice"], tokens["bob"]
    assert call(hub, "POST", "inference", "upload?name=private", alice,
                data=bundle_tgz).status_code == 201
    files = {"model": ("run.tar.gz", bundle_tgz, "application/gzip")}
    shared = call(hub, "POST", "inference", "upload", alice, files=files,
                  data={"name": "shared/tth"})
    assert shared.status_code == 201, shared.text
    for path in ("params/private", "params/alice/private"):
        answer = call(hub, "GET", "inference", path, bob)
        assert answer.status_code == 404, answer.text
    assert call(hub, "DELETE", "inference", "delete/private", bob).status_code == 404
    assert "shared/tth" in [m["model"] for m in
                            call(hub, "GET", "inference", "models", bob).json()["models"]]
    assert call(hub, "GET", "inference", "params/shared/tth", bob).status_code == 200
    refused = call(hub, "DELETE", "inference", "delete/shared/tth", bob)
    assert refused.status_code == 403 and "published by alice" in refused.json()["error"]
    assert call(hub, "DELETE", "inference", "delete/private", alice).status_code == 200
    assert call(hub, "GET", "inference", "params/private", alice).status_code == 404


def test_forged_expired_and_missing_tokens_are_refused(hub: Hub, tokens: dict[str, str]
                                                       ) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    alice = tokens["alice"]
    claims = jwt.decode(alice, options={"verify_signature": False})
    kid = jwt.get_unverified_header(alice)["kid"]
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": kid})
    keys = json.loads(hub.idp.keys_path.read_text())
    idp_key = jwt.PyJWK(keys["keys"][0] if "keys" in keys else keys).key
    expired = jwt.encode({**claims, "exp": int(time.time()) - 600,
                          "iat": int(time.time()) - 700}, idp_key, algorithm="RS256",
                         headers={"kid": kid})
    for service, path in (("inference", "models"), ("submit", "jobs")):
        for token, status, message in ((forged, 401, "signature does not verify"),
                                       (expired, 401, "token expired"),
                                       (tokens["eve"], 403, "allowed groups"),
                                       (None, 401, "Authorization: Bearer")):
            answer = call(hub, "GET", service, path, token)
            assert answer.status_code == status, (service, message, answer.text)
            assert message in answer.json()["error"]


def test_malicious_uploads_are_refused(hub: Hub, tokens: dict[str, str]) -> None:
    alice = tokens["alice"]
    for members, message in (
            ([("run/../../escape.txt", tarfile.REGTYPE, b"x")], "'..' in a path"),
            ([("run/model.onnx", tarfile.SYMTYPE, b"/etc/passwd")], "links are not allowed")):
        answer = call(hub, "POST", "inference", "upload?name=evil", alice,
                      data=archive(*members))
        assert answer.status_code == 400 and message in answer.json()["error"], answer.text
    assert not list(hub.state.rglob("escape.txt"))
    assert "evil" not in call(hub, "GET", "inference", "models", alice).text


def wait_for_job(hub: Hub, token: str, job: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = call(hub, "GET", "submit", f"jobs/{job}", token).json()
        if record.get("state") != "running":
            return record
        time.sleep(1)
    raise AssertionError(f"job {job} still running after {timeout} s")


def test_a_submitted_job_survives_a_restart_and_gives_its_results(
        hub: Hub, tokens: dict[str, str], samples: Path) -> None:
    alice, bob = tokens["alice"], tokens["bob"]
    body = {"name": "tth-lr", "labels": [1, 0],
            "files": [str(samples / "signal.root"), str(samples / "background.root")],
            "model": (MODELS / "sklearn_logistic_regression.py").read_text(),
            "params": {"chunk_size": 8000, "epochs": 1, "verbose": 0,
                       "identifier": ["runNo", "evtNo", "lumi"]},
            "preproc": {}, "device": "cpu", "memory": "2G", "cpus": 1}
    wrong = call(hub, "POST", "submit", "submit", alice,
                 json={**body, "params": {"epoch": 1}})
    assert wrong.status_code == 400
    assert wrong.json()["error"] == ("params.json: unknown key 'epoch' (did you mean "
                                     "'epochs'?)")
    submitted = call(hub, "POST", "submit", "submit", alice, json=body)
    assert submitted.status_code == 201, submitted.text
    job = submitted.json()["id"]
    assert submitted.json()["state"] == "running"

    hub.stop()  # stops the services too; the job runs on
    hub.start()
    assert call(hub, "GET", "submit", f"jobs/{job}", bob).status_code == 404
    record = wait_for_job(hub, alice, job)
    assert record["state"] == "finished", record
    assert record["exit_code"] == 0
    log = call(hub, "GET", "submit", f"jobs/{job}/log", alice).text
    assert "test split:" in log
    results = call(hub, "GET", "submit", f"jobs/{job}/results", alice)
    assert results.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(results.content)) as tar:
        names = set(tar.getnames())
    assert {"tth-lr/metrics.json", "tth-lr/model.pkl", "tth-lr/model.onnx"} <= names
    assert [j["id"] for j in call(hub, "GET", "submit", "jobs", alice).json()["jobs"]] == [job]
    assert call(hub, "GET", "submit", "jobs", bob).json()["jobs"] == []
    assert call(hub, "DELETE", "submit", f"jobs/{job}", bob).status_code == 404
    assert call(hub, "DELETE", "submit", f"jobs/{job}", alice).status_code == 200
    assert call(hub, "GET", "submit", f"jobs/{job}", alice).status_code == 404
