"""The publish client's own refusals, before or without a service: each names the cause."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlaas4hep.errors import UserError
from mlaas4hep.services.client import InferenceService, publish

from ..browser import free_port


def test_outside_a_hub_server_publish_says_what_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "metrics.json").write_text("{}")
    monkeypatch.delenv("MLAAS4HEP_INFERENCE_URL", raising=False)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "t")
    with pytest.raises(UserError, match="MLAAS4HEP_INFERENCE_URL and JUPYTERHUB_API_TOKEN"):
        publish(tmp_path, "m")


def test_a_folder_that_is_not_a_run_is_refused_before_any_upload(tmp_path: Path) -> None:
    service = InferenceService("http://127.0.0.1:9/services/inference/", "t", "x")
    with pytest.raises(UserError, match="not the output folder of a run"):
        publish(tmp_path, "m", service=service)


def test_an_unreachable_service_is_named(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text("{}")
    url = f"http://127.0.0.1:{free_port()}/services/inference/"
    with pytest.raises(UserError, match=f"cannot reach the inference service at {url}"):
        publish(tmp_path, "m", service=InferenceService(url, "t", url))
