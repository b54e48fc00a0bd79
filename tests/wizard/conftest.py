"""A user's home with sample files, as the hub gives it, for the wizard tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlaas4hep.samples import make_sample_set

NOTEBOOKS = Path(__file__).resolve().parents[2] / "extension" / "notebooks"
WIZARD_NOTEBOOK = "MLaaS4HEP wizard.ipynb"


@pytest.fixture(scope="session")
def sample_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """samples/ with signal.root, background.root (3000 events each), files.txt, labels.txt."""
    folder = tmp_path_factory.mktemp("wizard-samples") / "samples"
    make_sample_set(folder, 3000, seed=3)
    return folder


@pytest.fixture
def home(tmp_path: Path, sample_set: Path) -> Path:
    """A home folder with the wizard notebook and the samples."""
    shutil.copytree(sample_set, tmp_path / "samples")
    (tmp_path / "samples" / "files.txt").write_text(
        f"{tmp_path / 'samples' / 'signal.root'}\n{tmp_path / 'samples' / 'background.root'}\n")
    shutil.copy(NOTEBOOKS / WIZARD_NOTEBOOK, tmp_path / WIZARD_NOTEBOOK)
    return tmp_path
