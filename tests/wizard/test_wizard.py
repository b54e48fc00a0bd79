"""The wizard driven from Python as a user drives it: set widget values, click buttons."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from mlaas4hep_wizard import Wizard

BIN = Path(sys.executable).parent


def text(widget: object) -> str:
    """What an HTML message widget shows (tags removed, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", widget.value))


def train(wizard: Wizard, epochs: int = 3) -> None:
    t = wizard.training
    t.epochs.value, t.chunk_size.value, t.batch_size.value = epochs, 2000, 200
    t.train_button.click()
    t.wait(600)
    assert not t.running


def test_run_plots_every_epoch_and_export_reproduces_it(home: Path) -> None:
    wizard = Wizard(home)
    assert [(Path(r.name).name, r.label.value) for r in wizard.data.rows] == [
        ("signal.root", 1), ("background.root", 0)]
    assert "3,000 entries" in wizard.data.rows[0].info.value
    assert wizard.data.tree.value == "events"
    f = wizard.features
    assert {"runNo", "evtNo", "lumi"} <= set(wizard.data.first.identifiers)
    assert not f.boxes["runNo"].value and f.boxes["runNo"].disabled
    f.search.value = "fatjet"
    f.select_none.click()
    f.search.value = ""
    assert not f.boxes["fatJetPt"].value and f.boxes["jetPt"].value
    f.nb_name.value, f.nb_expr.value, f.nb_kind.value = "log_partonE", "log(partonE)", "jagged"
    assert "valid expression" in f.nb_check.value
    f.nb_add.click()
    f.cut_expr.value = "nJets >= 4"
    assert "valid cut" in f.cut_check.value
    f.cut_add.click()
    f.cut_expr.value, f.cut_kind.value = "log_partonE > 4", "any"
    f.cut_add.click()
    assert "events pass" in f.preview.value and "mlaas4hep-ok" in f.preview.value
    wizard.model.set_knobs(hidden_layers="32, 16", dropout=0.1)
    assert "Dense(32" in wizard.model.source.value

    train(wizard, epochs=3)
    t = wizard.training
    assert t.error is None, t.error
    assert len(t.history) == 3 and t.progress.value == t.progress.max == 3
    assert t.points == {k: 3 for k in ("loss", "val_loss", "accuracy", "val_accuracy", "auc",
                                       "val_auc")}
    assert bytes(t.plot.value).startswith(b"\x89PNG")
    assert "Test split" in wizard.results.summary.value
    assert bytes(wizard.results.roc.value).startswith(b"\x89PNG")
    assert wizard.tabs.selected_index == 4
    metrics = json.loads((t.output / "metrics.json").read_text())
    assert len(metrics["history"]) == 3 and metrics["n_features"] > 0

    wizard.results.folder.value = "exported"
    wizard.results.export_button.click()
    folder = home / "exported"
    for name in ("files.txt", "labels.txt", "params.json", "preproc.json", "model.py"):
        assert (folder / name).is_file(), name
    command = wizard.results.command.value
    assert "workflow.py --files=files.txt --labels=labels.txt --model=model.py" in command
    params = json.loads((folder / "params.json").read_text())
    assert "fatJetPt" in params["exclude_branches"] and params["epochs"] == 3
    preproc = json.loads((folder / "preproc.json").read_text())
    assert preproc["new_branch"]["log_partonE"]["def"] == "log(partonE)"

    # the exported files, run by workflow.py in a terminal, give the same test AUC
    done = subprocess.run([str(BIN / "workflow.py"), "--files=files.txt", "--labels=labels.txt",
                           "--model=model.py", "--params=params.json", "--preproc=preproc.json",
                           "--out-dir=run"], cwd=folder, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    again = json.loads((folder / "run" / "metrics.json").read_text())
    assert again["test"]["events"] == metrics["test"]["events"]
    assert np.isclose(again["test"]["auc"], metrics["test"]["auc"], rtol=0, atol=1e-6), (
        again["test"]["auc"], metrics["test"]["auc"])


def test_mistakes_show_inline_and_nothing_is_raised(home: Path) -> None:
    wizard = Wizard(home)
    f = wizard.features
    f.cut_expr.value = "nJets >"
    assert "mlaas4hep-error" in f.cut_check.value and "invalid expression" in text(f.cut_check)
    f.cut_expr.value = "__import__('os').system('touch pwned') > 0"
    assert "is not allowed" in text(f.cut_check)
    f.cut_add.click()  # refused, not added
    assert f.cuts == [] and not (home / "pwned").exists()
    f.nb_name.value, f.nb_expr.value = "x", "jetPt.sum()"
    assert "attribute access is not allowed" in text(f.nb_check)
    f.nb_expr.value = "nJest * 2"
    assert "unknown branch 'nJest'" in text(f.nb_check) and "nJets" in text(f.nb_check)

    (home / "broken.root").write_bytes(b"this is not a ROOT file")
    wizard.data.rescan()
    wizard.data.chooser.value = ("broken.root",)
    wizard.data.add_selected.click()
    broken = wizard.data.rows[-1]
    assert "not a ROOT file" in text(broken.info) and "mlaas4hep-error" in broken.info.value
    broken.widget.children[-1].click()  # its remove button
    assert len(wizard.data.rows) == 2

    wizard.data.url.value = "/store/data/missing.root"
    wizard.data.add_url.click()
    assert "redirector" in text(wizard.data.rows[-1].info)
    wizard.data.remove(wizard.data.rows[-1])

    f.cut_expr.value = "nJets > 1000"
    f.cut_add.click()
    assert "no events left" in text(f.preview)
    train(wizard, epochs=1)
    assert "leave zero events" in text(wizard.training.message)
    assert wizard.training.error and wizard.training.output is None
    assert not list((home / "wizard-runs").glob("*/output"))


def test_stop_ends_the_run_after_the_current_epoch(home: Path) -> None:
    wizard = Wizard(home)
    t = wizard.training
    t.epochs.value, t.chunk_size.value, t.batch_size.value = 200, 2000, 50
    t.train_button.click()
    assert t.running and not t.stop_button.disabled and t.train_button.disabled
    deadline = time.monotonic() + 300
    while not t.history and time.monotonic() < deadline:
        time.sleep(0.2)
    t.stop_button.click()
    t.wait(600)
    assert t.error is None, t.error
    assert 1 <= len(t.history) < 200 and not t.train_button.disabled
    assert "stopped early" in text(t.message) and "stopped early" in text(wizard.results.summary)
    metrics = json.loads((t.output / "metrics.json").read_text())
    assert metrics["stopped"] is True and len(metrics["history"]) == len(t.history)


def test_every_template_trains(home: Path) -> None:
    """Each backend's template, as the Model tab makes it, trains to an AUC above 0.5."""
    wizard = Wizard(home)
    aucs = {}
    for name in wizard.model.templates:
        wizard.model.choice.value = name
        train(wizard, epochs=1)
        assert wizard.training.error is None, (name, wizard.training.error)
        metrics = json.loads((wizard.training.output / "metrics.json").read_text())
        aucs[name] = metrics["test"]["auc"]
    assert set(aucs) == {"Keras MLP", "PyTorch MLP", "Gradient-boosted trees (scikit-learn)",
                         "XGBoost"}
    assert all(auc > 0.5 for auc in aucs.values()), aucs
