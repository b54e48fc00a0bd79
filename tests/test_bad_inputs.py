"""Every bad input: one clear 'error:' line naming the file/key/value, exit code 2,
no traceback, and no output folder left behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mlaas4hep.cli import main, workflow_main

from .conftest import DATA, edit_json

EXAMPLE_MODELS = Path(__file__).resolve().parents[1] / "mlaas4hep" / "examples" / "models"

SEED_MODEL_VERBATIM = '''from tensorflow import keras
from keras.models import Sequential
from keras.layers import Dense, Dropout

def model(idim):
    "Simple Keras model for testing purposes"
    ml_model = Sequential([Dense(128,
                                activation='relu', input_shape=(idim,)),
                            Dropout(0.5),
                            Dense(64, activation='relu'),
                            Dropout(0.5),
                            Dense(1, activation='sigmoid')])
    ml_model.compile(optimizer=keras.optimizers.Adam(lr=1e-3),
                    loss=keras.losses.BinaryCrossentropy(),
                    keras.metrics.AUC(name='auc'))
'''


def fails(capsys: pytest.CaptureFixture[str], argv: list[str], workdir: Path) -> str:
    """Run workflow.py in-process; assert exit 2, one error line, nothing written."""
    rc = workflow_main([*argv, f"--out-dir={workdir / 'out'}"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert not (workdir / "out").exists()
    assert not list(workdir.glob(".out.incomplete*"))
    return err


def test_missing_data_file(capsys, workdir: Path, seed_args: Callable) -> None:
    (workdir / "files.txt").write_text(f"{workdir / 'nope.root'}\n{DATA / 'uproot-HZZ.root'}\n")
    assert f"{workdir / 'nope.root'}: file not found" in fails(capsys, seed_args(), workdir)


def test_unreadable_path(capsys, workdir: Path, seed_args: Callable) -> None:
    (workdir / "adir.root").mkdir()
    (workdir / "files.txt").write_text(f"{workdir / 'adir.root'}\nb.root\n")
    assert "adir.root: not a readable file" in fails(capsys, seed_args(), workdir)


def test_not_a_root_file(capsys, workdir: Path, seed_args: Callable) -> None:
    fake = workdir / "fake.root"
    fake.write_text("hello, I am text\n" * 100)
    (workdir / "files.txt").write_text(f"{fake}\n{fake}\n")
    assert f"{fake}: not a ROOT file" in fails(capsys, seed_args(), workdir)


def test_truncated_root_file(capsys, workdir: Path, seed_args: Callable, samples: Path) -> None:
    data = (samples / "signal.root").read_bytes()
    cut = workdir / "truncated.root"
    cut.write_bytes(data[: len(data) // 2])
    (workdir / "files.txt").write_text(f"{cut}\n{samples / 'background.root'}\n")
    err = fails(capsys, seed_args(), workdir)
    assert f"{cut}: truncated ROOT file" in err


def test_tree_not_found_lists_trees(capsys, workdir: Path, seed_args: Callable) -> None:
    edit_json(workdir / "params.json", branch="boostedAk8/events")
    err = fails(capsys, seed_args(), workdir)
    assert "tree 'boostedAk8/events' not found" in err
    assert "trees in this file: events" in err


def test_unknown_selected_branch_suggests(capsys, workdir: Path, seed_args: Callable) -> None:
    edit_json(workdir / "params.json", selected_branches="nJets,jetPT")
    err = fails(capsys, seed_args(), workdir)
    assert "selected_branches" in err and "unknown branch 'jetPT'" in err
    assert "did you mean 'jetPt'" in err


def test_unknown_branch_in_expression(capsys, workdir: Path, seed_args: Callable) -> None:
    pre = json.loads((workdir / "preproc.json").read_text())
    pre["new_branch"]["log_partonE"]["def"] = "log(partonEnergy)"
    (workdir / "preproc.json").write_text(json.dumps(pre))
    err = fails(capsys, seed_args(), workdir)
    assert "new_branch.log_partonE.def: unknown branch 'partonEnergy'" in err
    assert "did you mean 'partonE'" in err


def test_malformed_preproc_json(capsys, workdir: Path, seed_args: Callable) -> None:
    text = (workdir / "preproc.json").read_text()
    (workdir / "preproc.json").write_text(text.replace('"def": "log(partonE)",',
                                                       '"def": "log(partonE)"'))
    err = fails(capsys, seed_args(), workdir)
    assert "preproc.json:5:" in err and "malformed JSON" in err


def test_seed_params_typo(capsys, workdir: Path, seed_args: Callable) -> None:
    data = json.loads((workdir / "params.json").read_text())
    data["nevtts"] = data.pop("nevts")
    (workdir / "params.json").write_text(json.dumps(data))
    err = fails(capsys, seed_args(), workdir)
    assert "params.json: unknown key 'nevtts' (did you mean 'nevts'?)" in err


def test_wrong_value_type(capsys, workdir: Path, seed_args: Callable) -> None:
    edit_json(workdir / "params.json", epochs="five")
    assert "key 'epochs' must be an integer, got \"five\"" in fails(capsys, seed_args(), workdir)


def test_files_labels_count_mismatch(capsys, workdir: Path, seed_args: Callable) -> None:
    (workdir / "labels.txt").write_text("1\n")
    err = fails(capsys, seed_args(), workdir)
    assert "lists 2 file(s) but" in err and "1 label(s)" in err


def test_cut_leaving_zero_events(capsys, workdir: Path, seed_args: Callable) -> None:
    pre = json.loads((workdir / "preproc.json").read_text())
    pre["flat_cut"]["nLeptons"]["cut"] = "nLeptons > 100"
    (workdir / "preproc.json").write_text(json.dumps(pre))
    err = fails(capsys, seed_args(), workdir)
    assert "leave zero events" in err and "signal.root: 4000 read" in err


def test_forbidden_expression_runs_nothing(capsys, workdir: Path, seed_args: Callable) -> None:
    pre = json.loads((workdir / "preproc.json").read_text())
    marker = workdir / "PWNED"
    pre["flat_cut"]["nLeptons"]["cut"] = f"__import__('os').system('touch {marker}')"
    (workdir / "preproc.json").write_text(json.dumps(pre))
    err = fails(capsys, seed_args(), workdir)
    assert "flat_cut.nLeptons.cut" in err and "not allowed" in err
    assert not marker.exists()


@pytest.mark.parametrize(("source", "expected"), [
    (SEED_MODEL_VERBATIM, "model.py:15: syntax error: positional argument follows keyword "
                          "argument (in compile(), pass metrics as metrics=[...])"),
    (SEED_MODEL_VERBATIM.replace("                    keras.metrics.AUC(name='auc'))",
                                 "                    metrics=[keras.metrics.AUC()])"),
     "model.py:13: model() failed: ValueError: Argument(s) not recognized: {'lr': 0.001}. "
     "'lr=' is a Keras 2 argument; Keras 3 uses learning_rate"),
    (SEED_MODEL_VERBATIM.replace("lr=", "learning_rate=").replace(
        "                    keras.metrics.AUC(name='auc'))",
        "                    metrics=[keras.metrics.AUC()])"),
     "model() returned None; did you forget to return the model"),
    ("def build(idim):\n    return None\n", "no function 'model' defined (it defines: build)"),
    ("import not_a_module_xyz\n", "model.py:1: importing the model file failed: "
                                  "ModuleNotFoundError"),
])
def test_model_file_mistakes(capsys, workdir: Path, seed_args: Callable, source: str,
                             expected: str) -> None:
    (workdir / "model.py").write_text(source)
    assert expected in fails(capsys, seed_args(), workdir)


@pytest.mark.parametrize(("device", "model", "expected"), [
    ("gpu", None, "key 'device' must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    ("cuda", None, "key 'device' is 'cuda': that is for PyTorch models; keras models train "
                   "on the CPU here"),
    ("cuda:0", "torch_mlp.py", "key 'device' is 'cuda:0', but torch 2.13.0+cpu sees no CUDA GPU "
                               "(the CPU build)"),
])
def test_device_that_cannot_be_used(capsys, workdir: Path, seed_args: Callable, device: str,
                                    model: str | None, expected: str) -> None:
    edit_json(workdir / "params.json", device=device)
    if model:
        shutil.copy(EXAMPLE_MODELS / model, workdir / "model.py")
    assert expected in fails(capsys, seed_args(), workdir)


def test_labels_must_be_binary_or_every_class_from_0(capsys, workdir: Path,
                                                    seed_args: Callable) -> None:
    (workdir / "labels.txt").write_text("1\n2\n")
    assert "labels must be 0 (background) and 1 (signal), or the classes 0, 1, ..., K-1" in fails(
        capsys, seed_args(), workdir)
    (workdir / "labels.txt").write_text("1\n1\n")
    assert "at least two classes are needed" in fails(capsys, seed_args(), workdir)


def test_existing_output_folder_needs_overwrite(capsys, workdir: Path,
                                                seed_args: Callable) -> None:
    (workdir / "out").mkdir()
    (workdir / "out" / "keep.txt").write_text("mine")
    rc = workflow_main([*seed_args(), f"--out-dir={workdir / 'out'}"])
    assert rc == 2 and "already exists" in capsys.readouterr().err
    assert (workdir / "out" / "keep.txt").read_text() == "mine"


def test_prepare_reports_errors_the_same_way(capsys, workdir: Path) -> None:
    (workdir / "labels.txt").write_text("1\n")
    rc = main(["prepare", f"--files={workdir / 'files.txt'}",
               f"--labels={workdir / 'labels.txt'}"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and "1 label(s)" in err


def test_interrupted_run_leaves_no_output(workdir: Path, seed_args: Callable) -> None:
    """Ctrl-C (SIGINT) during training: exit 130, no output folder, no partial folder."""
    edit_json(workdir / "params.json", epochs=50, chunk_size=500)
    proc = subprocess.Popen([str(Path(sys.executable).parent / "workflow.py"),
                             *seed_args("--out-dir=out")], cwd=workdir, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "epoch 1:" in line:
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted: no output was written" in err and "Traceback" not in err
    assert not (workdir / "out").exists()
    assert [p for p in os.listdir(workdir) if "incomplete" in p] == []


def test_help_documents_every_option_and_key() -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "workflow.py"), "--help"],
                          capture_output=True, text=True, check=True)
    from mlaas4hep.config import CUT_KEYS, NEW_BRANCH_KEYS, PARAMS_KEYS, PREPROC_SECTIONS

    for option in ("--files", "--labels", "--model", "--params", "--preproc", "--specs",
                   "--fout", "--out-dir", "--seed", "--overwrite"):
        assert option in done.stdout
    for key in [k.name for k in PARAMS_KEYS] + [*PREPROC_SECTIONS, *NEW_BRANCH_KEYS,
                                                  *CUT_KEYS]:
        assert f"  {key}" in done.stdout, key
    assert shutil.which("mlaas4hep", path=str(Path(sys.executable).parent))
