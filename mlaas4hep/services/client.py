"""Publish a training output to the hub's inference service from a user's server.

What a notebook cell, the wizard's "Publish model" and curl all do::

    from mlaas4hep.services.client import publish
    published = publish("wizard-runs/run-20250101-120000/output", "tth")
    print(published.curl_example())

and scoring many events from a notebook (numpy or awkward arrays by branch name, sent
in the service's binary form)::

    from mlaas4hep.services.client import InferenceService
    scores = InferenceService.from_env().predict("tth", events)["scores"]

Inside a user server the hub sets ``MLAAS4HEP_INFERENCE_URL`` (where the
server reaches the service), ``MLAAS4HEP_PUBLIC_URL`` (the hub's address for
users, shown in the examples) and ``JUPYTERHUB_API_TOKEN`` (the server's hub
token, sent as ``Authorization: token``).
"""

from __future__ import annotations

import io
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import UserError
from .archive import pack_folder
from .arrays import CONTENT_TYPE, pack_arrays

SERVICE_ENV = "MLAAS4HEP_INFERENCE_URL"
PUBLIC_ENV = "MLAAS4HEP_PUBLIC_URL"
TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
PREFIX = "/services/inference/"
TIMEOUT = 300.0


@dataclass(frozen=True)
class InferenceService:
    """Where the inference service answers, how to sign requests, and its public URL."""

    url: str
    token: str
    public_url: str

    @classmethod
    def from_env(cls) -> InferenceService:
        """The service of the hub this server runs under (see the module docstring)."""
        url, token = os.environ.get(SERVICE_ENV), os.environ.get(TOKEN_ENV)
        if not url or not token:
            raise UserError(f"no inference service here: {SERVICE_ENV} and {TOKEN_ENV} are "
                            "set in servers started by MLaaS4HEP Hub; elsewhere upload the "
                            "output folder with curl (see the README)")
        public = os.environ.get(PUBLIC_ENV, "").rstrip("/")
        return cls(url.rstrip("/") + "/", token, public + PREFIX if public else url)

    def call(self, method: str, path: str, body: bytes | None = None,
             content_type: str = "application/json") -> dict[str, Any]:
        """One request; the service's JSON answer, or a UserError with its message."""
        headers = {"Authorization": f"token {self.token}", "Content-Type": content_type}
        request = urllib.request.Request(self.url + path, data=body, method=method,
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            raise UserError(f"the inference service refused {path.split('?')[0]} "
                            f"(HTTP {exc.code}): {_error_of(exc)}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UserError(f"cannot reach the inference service at {self.url}: {reason}"
                            ) from None

    def predict(self, model: str, columns: Mapping[str, Any]) -> dict[str, Any]:
        """Scores of many events given as arrays by branch name (the model's raw keys):
        ``{"scores": [...], "passes_cuts": [...]}``."""
        return self.call("POST", f"arrays?model={quote(model, safe='/')}",
                         pack_arrays(columns), CONTENT_TYPE)


def _error_of(exc: urllib.error.HTTPError) -> str:
    text = exc.read().decode(errors="replace")
    try:
        return json.loads(text)["error"]
    except (ValueError, KeyError, TypeError):
        return text.strip()[:300] or exc.reason


@dataclass(frozen=True)
class Published:
    """A model now served by the inference service."""

    model: str
    owner: str
    service: str
    keys: list[str]
    kinds: dict[str, str]

    def curl_example(self) -> str:
        """Shell lines that score one event with an IAM token from oidc-agent (the values
        are placeholders: a number per flat key, a list per jagged key)."""
        values = [[] if self.kinds.get(k) == "jagged" else 0 for k in self.keys]
        body = json.dumps({"model": self.model, "keys": self.keys, "values": values})
        service = self.service.rstrip("/")
        return (f"TOKEN=$(oidc-token mlaas4hep)   # your oidc-agent account for the hub's IAM\n"
                f"S={service}\n"
                f'curl -H "Authorization: Bearer $TOKEN" $S/params/{self.model}\n'
                f"curl -H \"Authorization: Bearer $TOKEN\" -d '{body}' $S/json")


def publish(run_dir: str | Path, name: str, shared: bool = False, *,
            service: InferenceService | None = None) -> Published:
    """Upload a ``workflow.py`` output folder as model ``name`` (``shared/name`` when
    ``shared``: visible to every user), replacing your earlier model of that name."""
    folder = Path(run_dir).expanduser()
    if not (folder / "metrics.json").is_file():
        raise UserError(f"{folder}: not the output folder of a run (no metrics.json)")
    service = service or InferenceService.from_env()
    model = f"shared/{name}" if shared else name
    archive = io.BytesIO()
    pack_folder(folder, archive, "run")
    info = service.call("POST", f"upload?name={quote(model, safe='/')}", archive.getvalue(),
                        "application/gzip")
    params = service.call("GET", f"params/{quote(model, safe='/')}")
    return Published(model, info["owner"], service.public_url, params["keys"],
                     params["kinds"])
