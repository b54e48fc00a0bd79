"""One small trained model bundle (the seed's Keras MLP and preproc.json, one epoch on the
generated samples) shared by the service tests, and tarballs of it."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest

from mlaas4hep.workflow import run_workflow

from ..conftest import EXAMPLES, edit_json


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, samples: Path) -> Path:
    """A workflow.py output folder (model.keras, model.onnx, specs, params, preproc)."""
    work = tmp_path_factory.mktemp("trained")
    for name in ("model.py", "params.json", "preproc.json"):
        shutil.copy(EXAMPLES / name, work / name)
    edit_json(work / "params.json", chunk_size=8000, epochs=1, hist="", verbose=0)
    return run_workflow(samples / "files.txt", samples / "labels.txt", work / "model.py",
                        work / "params.json", work / "preproc.json", out_dir=work / "run")


def tarball(folder: Path, arcname: str = "run") -> bytes:
    """``folder`` as a .tar.gz (one top-level folder ``arcname``)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        tar.add(str(folder), arcname=arcname)
    return out.getvalue()


@pytest.fixture(scope="session")
def bundle_tgz(trained: Path) -> bytes:
    """The trained output folder as a tarball, as a user would upload it."""
    return tarball(trained)
