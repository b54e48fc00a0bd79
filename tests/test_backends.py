"""Every example model (Keras, PyTorch, scikit-learn, XGBoost) trained by workflow.py on the
generated samples: metrics, plots and the model file in the library's own format."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlaas4hep.dataset import Dataset
from mlaas4hep.model_loader import build_model
from mlaas4hep.workflow import load_inputs, run_workflow

from .conftest import edit_json

MODELS = Path(__file__).resolve().parents[1] / "mlaas4hep" / "examples" / "models"
BIN = Path(sys.executable).parent
SAVED_AS = {"keras": ".keras", "pytorch": ".pt2", "scikit-learn": ".pkl", "xgboost": ".json"}


@pytest.mark.parametrize("example", sorted(p.name for p in MODELS.glob("*.py")))
def test_example_model_trains_with_workflow_py(example: str, workdir: Path) -> None:
    edit_json(workdir / "params.json", chunk_size=2000, epochs=2, nevts=4000,
              training="standard")
    done = subprocess.run([str(BIN / "workflow.py"), "--files=files.txt", "--labels=labels.txt",
                           f"--model={MODELS / example}", "--params=params.json",
                           "--preproc=preproc.json", "--out-dir=run"],
                          cwd=workdir, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((workdir / "run" / "metrics.json").read_text())
    assert metrics["test"]["auc"] > 0.5, metrics["test"]
    assert metrics["history"] and "val_auc" in metrics["history"][-1]
    model_file = workdir / "run" / metrics["model"]
    assert model_file.is_file() and model_file.suffix == SAVED_AS[metrics["backend"]]
    for plot in ("roc.png", "scores.png", "auc.png", "loss.png"):
        assert (workdir / "run" / plot).stat().st_size > 1000, plot
    assert f"AUC {metrics['test']['auc']:.4f}" in done.stderr + done.stdout


def test_partial_fit_sees_every_chunk_every_epoch(workdir: Path) -> None:
    """SGDClassifier learns from each chunk of the stream, not only the last one."""
    from mlaas4hep.backends import adapter_for
    from mlaas4hep.train import train

    edit_json(workdir / "params.json", chunk_size=1000, epochs=3, training="chunk")
    inputs = load_inputs(workdir / "files.txt", workdir / "labels.txt",
                         workdir / "params.json", workdir / "preproc.json")
    with Dataset.open(inputs.pairs, inputs.params, inputs.preproc) as data:
        specs = data.specs()
        adapter = adapter_for(build_model(MODELS / "sklearn_sgd.py", specs.n_features),
                              where="sklearn_sgd.py")
        history = train(adapter, data, specs, inputs.params)
        assert data.plan.n_chunks > 3
    train_events = sum(f["train"] for f in specs.files)
    assert adapter.samples_seen == 3 * train_events
    assert [h["epoch"] for h in history] == [0, 1, 2]


def test_in_memory_fit_refuses_with_an_estimate_when_too_big(workdir: Path, monkeypatch) -> None:
    from mlaas4hep.backends import sklearn_backend
    from mlaas4hep.errors import UserError

    monkeypatch.setattr(sklearn_backend, "available_memory", lambda: 1024**2)
    with pytest.raises(UserError, match=r"has no partial_fit.*GiB.*partial_fit"):
        run_workflow(workdir / "files.txt", workdir / "labels.txt",
                     MODELS / "sklearn_random_forest.py", workdir / "params.json",
                     workdir / "preproc.json", out_dir=workdir / "big")
    assert not (workdir / "big").exists()


def test_unknown_model_type_is_refused_clearly(workdir: Path) -> None:
    from mlaas4hep.errors import UserError

    (workdir / "odd.py").write_text("def model(idim):\n    return {'layers': 3}\n")
    with pytest.raises(UserError, match=r"odd.py: model\(\) returned a builtins.dict, which no "
                                        r"backend trains"):
        run_workflow(workdir / "files.txt", workdir / "labels.txt", workdir / "odd.py",
                     workdir / "params.json", workdir / "preproc.json", out_dir=workdir / "odd")


def test_torch_predictions_are_probabilities_and_reloadable(workdir: Path) -> None:
    import torch

    edit_json(workdir / "params.json", chunk_size=2000, epochs=1, training="standard")
    out = run_workflow(workdir / "files.txt", workdir / "labels.txt", MODELS / "torch_mlp.py",
                       workdir / "params.json", workdir / "preproc.json", out_dir=workdir / "t")
    reloaded = torch.export.load(str(out / "model.pt2")).module()
    n_features = json.loads((out / "metrics.json").read_text())["n_features"]
    X = np.random.default_rng(0).random((5, n_features), dtype=np.float32)
    logits = reloaded(torch.from_numpy(X)).detach().numpy().reshape(-1)
    assert logits.shape == (5,) and np.all(np.isfinite(logits))

