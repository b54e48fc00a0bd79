"""Every example model (Keras, PyTorch, scikit-learn, XGBoost) trained by workflow.py on the
generated samples: metrics, plots and the model file in the library's own format."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlaas4hep.dataset import Dataset
from mlaas4hep.model_loader import build_model
from mlaas4hep.workflow import load_inputs, run_workflow

from .conftest import edit_json

MODELS = Path(__file__).resolve().parents[1] / "mlaas4hep" / "examples" / "models"
BIN = Path(sys.executable).parent
SEED_OPTIONS = ("--files=files.txt", "--labels=labels.txt", "--params=params.json",
                "--preproc=preproc.json")
def workflow_py(cwd: Path, model: Path, *options: str) -> tuple[str, dict]:
    """Run ``workflow.py --model=MODEL OPTIONS --out-dir=run`` in ``cwd``; its output and
    run/metrics.json (the run must succeed)."""
    done = subprocess.run([str(BIN / "workflow.py"), f"--model={model}", *options,
                           "--out-dir=run"], cwd=cwd, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr, json.loads((cwd / "run" / "metrics.json").read_text())


NO_ONNX = {"sklearn_gradient_boosting.py": "skl2onnx 1.20 fails on scikit-learn 1.9's "
                                            "HistGradientBoostingClassifier (TypeError: a bool "
                                            "in an int attribute of TreeEnsembleClassifier)"}
SAVED_AS = {"keras": ".keras", "pytorch": ".pt2", "scikit-learn": ".pkl", "xgboost": ".json"}


@pytest.mark.parametrize("example", sorted(p.name for p in MODELS.glob("*.py")))
def test_example_model_trains_with_workflow_py(example: str, workdir: Path) -> None:
    edit_json(workdir / "params.json", chunk_size=2000, epochs=2, nevts=4000,
              training="standard")
    output, metrics = workflow_py(workdir, MODELS / example, *SEED_OPTIONS)
    assert metrics["test"]["auc"] > 0.5, metrics["test"]
    assert metrics["history"] and "val_auc" in metrics["history"][-1]
    model_file = workdir / "run" / metrics["model"]
    assert model_file.is_file() and model_file.suffix == SAVED_AS[metrics["backend"]]
    for plot in ("roc.png", "scores.png", "auc.png", "loss.png"):
        assert (workdir / "run" / plot).stat().st_size > 1000, plot
    assert f"AUC {metrics['test']['auc']:.4f}" in output
    if example in NO_ONNX:  # the run says why and leaves no file
        assert "error" in metrics["onnx"] and not (workdir / "run" / "model.onnx").exists()
        assert "no ONNX copy of the scikit-learn model" in output
    else:
        assert_onnx_matches(workdir / "run", metrics)


def assert_onnx_matches(run: Path, metrics: dict) -> None:
    """The run kept model.onnx, and onnxruntime's scores on test events equal the saved native
    model's scores (rtol 1e-4, atol 1e-5) -- checked here independently of the workflow's own
    check."""
    from mlaas4hep.onnx_export import onnx_scores, onnx_session
    from mlaas4hep.tasks import Task

    assert metrics["onnx"].get("file") == "model.onnx", metrics["onnx"]
    assert metrics["onnx"]["events_checked"] > 0
    task = Task(metrics["classes"], regression=metrics["task"] == "regression")
    rng = np.random.default_rng(1)
    X = rng.random((500, metrics["n_features"]), dtype=np.float32)
    session = onnx_session(run / "model.onnx")
    if len(session.get_inputs()) == 2:  # a model fed (X, mask)
        X = (X, (rng.random(X.shape) > 0.3).astype(np.float32))
    native = load_native(run / metrics["model"], metrics["backend"], task)
    np.testing.assert_allclose(onnx_scores(session, X, task), native(X), rtol=1e-4, atol=1e-5)


def shaped(scores: np.ndarray, task: Any) -> np.ndarray:
    """(n, K) class probabilities stay; one value per event becomes shape (n,)."""
    return scores if task.multiclass else scores.reshape(len(scores))


def load_native(path: Path, backend: str, task: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The saved native model, loaded with its own library: a function giving its scores
    (signal probability per event, or class probabilities)."""
    if backend == "keras":
        import keras

        model = keras.saving.load_model(path)
        return lambda X: shaped(model.predict(list(X) if isinstance(X, tuple) else X,
                                              verbose=0), task)
    if backend == "pytorch":  # the example modules give logits
        import torch

        module = torch.export.load(str(path)).module()
        activation = (torch.sigmoid if task.binary else (lambda t: t) if task.regression
                      else (lambda t: torch.softmax(t, dim=1)))
        def scores(X: Any) -> np.ndarray:
            arrays = X if isinstance(X, tuple) else (X,)
            out = module(*(torch.from_numpy(a) for a in arrays))
            return shaped(activation(out).detach().numpy(), task)

        return scores
    if backend == "xgboost":
        import xgboost

        booster = xgboost.Booster(model_file=str(path))
        return lambda X: booster.predict(xgboost.DMatrix(X))
    model = pickle.loads(path.read_bytes())
    if task.regression:
        return model.predict
    return lambda X: model.predict_proba(X)[:, 1] if task.binary else model.predict_proba(X)


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


def test_xgboost_memory_does_not_grow_with_the_data_set(tmp_path: Path) -> None:
    """XGBoost trains from the stream: 4x the events (several chunks each) add far less
    memory than the 4x larger training matrix would take (peak RssAnon, one run each)."""
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "xgboost_memory.py"
    subprocess.run([sys.executable, str(bench), "--events=40000", f"--json={tmp_path}/m.json"],
                   check=True, timeout=900, capture_output=True)
    result = json.loads((tmp_path / "m.json").read_text())
    (small, large), (matrix_small, matrix_large) = result["xgboost_mb"], result["matrix_mb"]
    assert matrix_large - matrix_small > 100, result  # well above the noise of a peak RSS
    assert large - small < 0.3 * (matrix_large - matrix_small), result


def test_in_memory_fit_refuses_with_an_estimate_when_too_big(workdir: Path, monkeypatch) -> None:
    from mlaas4hep.backends import sklearn_backend
    from mlaas4hep.errors import UserError

    monkeypatch.setattr(sklearn_backend, "available_memory", lambda: 1024**2)
    with pytest.raises(UserError, match=r"has no partial_fit.*GiB.*partial_fit"):
        run_workflow(workdir / "files.txt", workdir / "labels.txt",
                     MODELS / "sklearn_random_forest.py", workdir / "params.json",
                     workdir / "preproc.json", out_dir=workdir / "big")
    assert not (workdir / "big").exists()


MASK_CHECKING_MODEL = """
import json, torch
from torch import nn

class Checked(nn.Module):
    def __init__(self, idim):
        super().__init__()
        self.linear = nn.Linear(2 * idim, 1)
        self.padded = 0

    def forward(self, x, mask):
        if not torch.compiler.is_exporting():  # saving traces forward without data
            assert x.shape == mask.shape and set(mask.unique().tolist()) <= {0.0, 1.0}
            assert bool((x[mask == 0] == 0).all()), "padding must hold 0"
            self.padded += int((mask == 0).sum())
            with open("padded.json", "w") as out:
                json.dump(self.padded, out)
        return self.linear(torch.cat([x, mask], dim=1))

def model(idim):
    return Checked(idim)
"""


def test_a_model_with_a_mask_argument_gets_the_padding_mask(workdir: Path,
                                                            monkeypatch) -> None:
    """forward(x, mask) receives the real mask: same shape as X, 0/1, 0 on every padded
    position (where X holds 0), and the samples' jagged branches do pad."""
    (workdir / "checked.py").write_text(MASK_CHECKING_MODEL)
    monkeypatch.chdir(workdir)
    edit_json(workdir / "params.json", epochs=1, training="standard")
    out = run_workflow(workdir / "files.txt", workdir / "labels.txt", workdir / "checked.py",
                       workdir / "params.json", workdir / "preproc.json", out_dir="masked")
    assert json.loads((workdir / "padded.json").read_text()) > 0
    assert json.loads((out / "metrics.json").read_text())["onnx"]["file"] == "model.onnx"


def test_wants_mask_on_a_model_that_cannot_take_it_is_refused(workdir: Path) -> None:
    from mlaas4hep.errors import UserError

    (workdir / "forest.py").write_text(
        "from sklearn.ensemble import RandomForestClassifier\n"
        "def model():\n    m = RandomForestClassifier()\n    m.wants_mask = True\n"
        "    return m\n")
    with pytest.raises(UserError, match=r"forest.py: wants_mask is for Keras and PyTorch "
                                        r"models; scikit-learn models are given X only"):
        run_workflow(workdir / "files.txt", workdir / "labels.txt", workdir / "forest.py",
                     workdir / "params.json", workdir / "preproc.json", out_dir=workdir / "f")


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



@pytest.fixture(scope="module")
def three_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """background (0), signal (1) and a second signal sample (2), 2000 events each."""
    from mlaas4hep.samples import make_sample

    folder = tmp_path_factory.mktemp("three-classes")
    names = [make_sample(folder / "background.root", 2000, "background", seed=1),
             make_sample(folder / "signal.root", 2000, "signal", seed=2),
             make_sample(folder / "signal-2.root", 2000, "signal", seed=3)]
    (folder / "files.txt").write_text("".join(f"{n}\n" for n in names))
    (folder / "labels.txt").write_text("0\n1\n2\n")
    (folder / "params.json").write_text(json.dumps(
        {"chunk_size": 2000, "epochs": 2, "training": "standard",
         "identifier": ["runNo", "evtNo", "lumi"]}))
    return folder


@pytest.mark.parametrize("example", sorted(p.name for p in (MODELS / "multiclass").glob("*.py")))
def test_multiclass_model_trains_with_workflow_py(example: str, three_classes: Path,
                                                  tmp_path: Path) -> None:
    _, metrics = workflow_py(tmp_path, MODELS / "multiclass" / example,
                             f"--files={three_classes / 'files.txt'}",
                             f"--labels={three_classes / 'labels.txt'}",
                             f"--params={three_classes / 'params.json'}")
    assert metrics["task"] == "3-class" and metrics["classes"] == 3
    assert set(metrics["events"]["test"]) == {"0", "1", "2"}
    assert metrics["test"]["auc"] > 0.5 and 0 < metrics["test"]["accuracy"] <= 1
    assert "val_accuracy" in metrics["history"][-1]
    for plot in ("confusion.png", "roc.png", "loss.png", "accuracy.png"):
        assert (tmp_path / "run" / plot).stat().st_size > 1000, plot
    assert_onnx_matches(tmp_path / "run", metrics)


@pytest.mark.parametrize("example", sorted(p.name for p in (MODELS / "regression").glob("*.py")))
def test_regression_model_trains_with_workflow_py(example: str, workdir: Path) -> None:
    """HT (the scalar sum of jet pT) predicted from the other branches."""
    edit_json(workdir / "params.json", chunk_size=2000, epochs=3, training="standard",
              target="HT")
    _, metrics = workflow_py(workdir, MODELS / "regression" / example, *SEED_OPTIONS)
    assert metrics["task"] == "regression"
    assert {"loss", "mae"} <= set(metrics["test"]) and "auc" not in metrics["test"]
    assert {"loss", "mae", "val_loss", "val_mae"} <= set(metrics["history"][-1])
    specs = json.loads((workdir / "run" / "global-specs.json").read_text())
    assert "HT" not in specs["inputs"]
    for plot in ("predicted.png", "loss.png", "mae.png"):
        assert (workdir / "run" / plot).stat().st_size > 1000, plot
    assert not (workdir / "run" / "roc.png").exists()
    assert_onnx_matches(workdir / "run", metrics)


@pytest.mark.parametrize("example", ["keras_mlp.py", "torch_mlp.py",
                                     "sklearn_logistic_regression.py", "xgboost_bdt.py"])
def test_class_weights_raise_the_signal_efficiency_and_are_reported(example: str,
                                                                     workdir: Path) -> None:
    """With signal weighted x5, the same run (same seed) keeps more signal at score 0.5."""
    edit_json(workdir / "params.json", chunk_size=2000, epochs=2, training="standard")
    efficiency = []
    for weight, name in (("", "plain"), ({"1": 5.0}, "weighted")):
        edit_json(workdir / "params.json", class_weight=weight)
        out = run_workflow(workdir / "files.txt", workdir / "labels.txt", MODELS / example,
                           workdir / "params.json", workdir / "preproc.json",
                           out_dir=workdir / name)
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["class_weight"] == ({"0": 1.0, "1": 5.0} if weight else {})
        efficiency.append(metrics["test"]["signal_efficiency"])
    assert efficiency[1] > efficiency[0], efficiency


def test_class_weight_mistakes_are_named(workdir: Path) -> None:
    from mlaas4hep.errors import UserError

    for value, message in (("equal", "must be 'balanced' or an object"),
                           ({"signal": 2.0}, "maps class labels"),
                           ({"7": 2.0}, r"names class\(es\) \[7\]")):
        edit_json(workdir / "params.json", class_weight=value)
        with pytest.raises(UserError, match=message):
            run_workflow(workdir / "files.txt", workdir / "labels.txt",
                         MODELS / "sklearn_sgd.py", workdir / "params.json",
                         workdir / "preproc.json", out_dir=workdir / "bad")
