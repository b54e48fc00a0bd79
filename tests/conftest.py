"""Shared fixtures: real ROOT files (copies in tests/data) and generated samples."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from mlaas4hep.samples import make_signal_background

from .browser import browser  # noqa: F401  (fixtures for all tests)
from .docker.dockerd import built_images, dockerd  # noqa: F401

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).parents[1] / "mlaas4hep" / "examples"


def pytest_configure(config: pytest.Config) -> None:
    """Point ``$X509_CERT_DIR`` at a folder of the session's own before any XRootD client
    connects: the client reads it only once per process, and tests add their CAs to it
    (:func:`tests.servers.tls_ca.trust_in_this_process`)."""
    folder = tempfile.mkdtemp(prefix="mlaas4hep-x509-")
    os.environ["X509_CERT_DIR"] = folder
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """signal.root / background.root (4000 events each) with files.txt and labels.txt."""
    out = tmp_path_factory.mktemp("samples")
    signal, background = make_signal_background(out, 4000, seed=7)
    (out / "files.txt").write_text(f"# generated ttH-like samples\n{signal}\n{background}\n")
    (out / "labels.txt").write_text("1  # signal\n0\n")
    return out


@pytest.fixture
def workdir(tmp_path: Path, samples: Path) -> Path:
    """A folder holding the seed's example model.py, params.json, preproc.json and lists."""
    for name in ("model.py", "params.json", "preproc.json"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    for name in ("files.txt", "labels.txt"):
        shutil.copy(samples / name, tmp_path / name)
    edit_json(tmp_path / "params.json", chunk_size=3000, epochs=2, hist="", verbose=0)
    return tmp_path


def edit_json(path: Path, **changes: object) -> None:
    """Update keys of a JSON object file in place."""
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data, indent=1))


@pytest.fixture
def seed_args(workdir: Path) -> Callable[..., list[str]]:
    """The seed's command line (paths in workdir), with extra options appended."""

    def args(*extra: str) -> list[str]:
        return [f"--files={workdir / 'files.txt'}", f"--labels={workdir / 'labels.txt'}",
                f"--model={workdir / 'model.py'}", f"--params={workdir / 'params.json'}",
                f"--preproc={workdir / 'preproc.json'}", *extra]

    return args
