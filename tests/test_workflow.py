"""workflow.py end to end on generated ttH(bb)-like samples, with the seed's inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mlaas4hep.samples import make_signal_background
from mlaas4hep.workflow import run_workflow

from .conftest import EXAMPLES, edit_json

BIN = Path(sys.executable).parent
PLOTS = ("loss", "accuracy", "auc", "roc", "scores")


def check_outputs(out: Path) -> dict:
    for name in ("model.keras", "metrics.json", "global-specs.json", "params.json",
                 "preproc.json", "files.txt", "labels.txt", "run.log"):
        assert (out / name).is_file(), name
    for name in PLOTS:
        for suffix in (".png", ".pdf"):
            assert (out / f"{name}{suffix}").stat().st_size > 1000, name + suffix
    return json.loads((out / "metrics.json").read_text())


def test_seed_command_trains_and_writes_model_metrics_and_plots(
        workdir: Path, seed_args: Callable[..., list[str]]) -> None:
    done = subprocess.run([str(BIN / "workflow.py"), *seed_args("--out-dir=run")], cwd=workdir,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    metrics = check_outputs(workdir / "run")
    specs = json.loads((workdir / "run" / "global-specs.json").read_text())
    assert specs["events"] == sum(f["selected"] for f in specs["files"]) > 0
    assert metrics["test"]["events"] == sum(metrics["events"]["test"].values())
    assert metrics["test"]["auc"] > 0.6
    assert {"loss", "auc", "accuracy", "val_loss", "val_auc", "val_accuracy"} <= set(
        metrics["history"][0])
    assert "--- first pass:" in done.stdout and "test split:" in done.stdout
    assert not list(workdir.glob(".run.incomplete*"))

    import keras

    model = keras.models.load_model(workdir / "run" / "model.keras")
    assert model.input_shape == (None, specs["n_features"])


def test_standard_training_makes_epochs_over_all_chunks(workdir: Path) -> None:
    edit_json(workdir / "params.json", training="standard", epochs=3, chunk_size=1000)
    epochs: list[dict] = []
    out = run_workflow(workdir / "files.txt", workdir / "labels.txt", workdir / "model.py",
                       workdir / "params.json", workdir / "preproc.json",
                       out_dir=workdir / "std", on_epoch=epochs.append)
    metrics = check_outputs(out)
    assert [h["epoch"] for h in metrics["history"]] == [0, 1, 2]
    assert [e.pop("steps_planned") for e in epochs] == [3, 3, 3]
    assert epochs == metrics["history"]
    assert all("val_auc" in h and "chunk" not in h for h in metrics["history"])
    assert metrics["training"] == "standard" and metrics["stopped"] is False


def test_stop_ends_training_after_the_current_epoch(workdir: Path) -> None:
    """A stop request (the wizard's Stop button) keeps the epochs done and writes every output."""
    edit_json(workdir / "params.json", training="chunk", epochs=4, chunk_size=1000)
    epochs: list[dict] = []
    out = run_workflow(workdir / "files.txt", workdir / "labels.txt", workdir / "model.py",
                       workdir / "params.json", workdir / "preproc.json",
                       out_dir=workdir / "stopped", on_epoch=epochs.append,
                       stop=lambda: len(epochs) >= 2)
    metrics = check_outputs(out)
    assert len(metrics["history"]) == 2 and metrics["stopped"] is True
    assert epochs[0]["steps_planned"] > 4  # epochs x chunks


def test_same_seed_gives_identical_results(workdir: Path) -> None:
    edit_json(workdir / "params.json", epochs=1)
    runs = [run_workflow(workdir / "files.txt", workdir / "labels.txt", workdir / "model.py",
                         workdir / "params.json", workdir / "preproc.json", seed=5,
                         out_dir=workdir / f"r{i}") for i in range(2)]
    a, b = (json.loads((r / "metrics.json").read_text()) for r in runs)
    assert a["test"] == b["test"] and a["history"] == b["history"]


def test_hist_writes_input_histograms(workdir: Path) -> None:
    edit_json(workdir / "params.json", hist="pdfs", epochs=1,
              selected_branches=["nJets", "HT", "jetBtag"])
    out = run_workflow(workdir / "files.txt", workdir / "labels.txt", workdir / "model.py",
                       workdir / "params.json", None, out_dir=workdir / "h")
    assert sorted(p.name for p in (out / "pdfs").iterdir()) == [
        "HT.png", "jetBtag.png", "nJets.png"]


def test_seed_workflow_on_100k_events_per_file(tmp_path: Path) -> None:
    """The issue's full-size check: seed params/preproc, 100k signal + 100k background."""
    signal, background = make_signal_background(tmp_path / "s", 100_000, seed=11)
    (tmp_path / "files.txt").write_text(f"{signal}\n{background}\n")
    (tmp_path / "labels.txt").write_text("1\n0\n")
    for name in ("model.py", "params.json", "preproc.json"):
        (tmp_path / name).write_text((EXAMPLES / name).read_text())
    edit_json(tmp_path / "params.json", hist="", verbose=0, epochs=3)
    done = subprocess.run(
        [str(BIN / "workflow.py"), "--files=files.txt", "--labels=labels.txt",
         "--model=model.py", "--params=params.json", "--preproc=preproc.json", "--out-dir=out"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    metrics = check_outputs(tmp_path / "out")
    assert sum(metrics["events"]["train"].values()) > 10_000
    assert metrics["test"]["auc"] > 0.65, metrics["test"]
    assert np.isfinite(metrics["test"]["loss"])
