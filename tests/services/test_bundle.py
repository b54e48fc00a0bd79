"""Model bundles: predictions on ROOT files and JSON rows equal the framework's own (the
training pipeline with the native Keras model) on the same events; clear messages for
wrong keys and values."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import uproot

from mlaas4hep.dataset import Dataset
from mlaas4hep.errors import UserError
from mlaas4hep.services.bundle import ModelBundle


def framework_scores(bundle: ModelBundle, run: Path, path: Path) -> np.ndarray:
    """The training pipeline (unshuffled) on ``path`` with the training's specs, scored by
    the saved native Keras model."""
    import keras

    params = dataclasses.replace(bundle.params, shuffle=False, nevts=-1)
    with Dataset.open([(str(path), 1)], params, bundle.preproc) as data:
        X = np.concatenate([chunk.X for chunk in data.chunks(bundle.specs)])
    model = keras.models.load_model(run / "model.keras")
    return model.predict(X, verbose=0).reshape(-1)


def rows_of(path: Path, keys: list[str], entries: np.ndarray) -> list[list]:
    """Events of a ROOT file as JSON rows (lists for jagged branches)."""
    with uproot.open(path) as f:
        arrays = f["events"].arrays(keys, library="ak")
    columns = {k: arrays[k][entries].to_list() for k in keys}
    return [[columns[k][i] for k in keys] for i in range(len(entries))]


def test_predictions_on_a_root_file_and_json_rows_equal_the_frameworks(
        trained: Path, samples: Path) -> None:
    bundle = ModelBundle(trained)
    signal = samples / "signal.root"
    entries, scores = bundle.predict_file(str(signal))
    native = framework_scores(bundle, trained, signal)
    assert len(scores) == len(native) > 100
    np.testing.assert_allclose(scores, native, rtol=1e-4, atol=1e-5)

    with uproot.open(signal) as f:
        total = f["events"].num_entries
    assert 0 < len(entries) < total  # the cuts of preproc.json were applied
    picked = np.arange(0, 300)
    result = bundle.predict_rows(bundle.keys, rows_of(signal, bundle.keys, picked))
    passing = np.isin(picked, entries)
    assert result.passes_cuts.tolist() == passing.tolist()
    np.testing.assert_allclose(result.scores[passing], scores[:passing.sum()],
                               rtol=1e-5, atol=1e-6)

    # keys in another order give the same scores
    order = list(reversed(bundle.keys))
    again = bundle.predict_rows(order, rows_of(signal, order, picked))
    np.testing.assert_allclose(again.scores, result.scores, rtol=1e-6)


def test_describe_lists_the_raw_keys_the_model_needs(trained: Path) -> None:
    info = ModelBundle(trained).describe()
    assert "partonE" in info["keys"] and "nJets" in info["keys"]  # used by new branches
    assert "log_partonE" not in info["keys"]  # computed by the service
    assert not {"runNo", "evtNo", "lumi"} & set(info["keys"])  # identifiers are not inputs
    assert info["kinds"]["partonPt"] == "jagged" and info["kinds"]["nLeptons"] == "flat"
    assert info["kinds"]["partonE"] == "any"  # removed from the inputs: read by def only
    assert info["task"] == "binary"


@pytest.mark.parametrize(("change", "message"), [
    (lambda keys, row: (keys[:-1], row[:-1]), "missing key(s) "),
    (lambda keys, row: (["nJet", *keys[1:]], row), "unknown key 'nJet' (did you mean"),
    (lambda keys, row: (keys, row[:-1]), "row 0 has"),
    (lambda keys, row: (keys, ["abc", *row[1:]]), "key 'nJets': expected a number per event"),
])
def test_wrong_keys_and_values_get_one_clear_message(trained: Path, samples: Path, change,
                                                      message: str) -> None:
    bundle = ModelBundle(trained)
    keys = ["nJets", *[k for k in bundle.keys if k != "nJets"]]
    row = rows_of(samples / "signal.root", keys, np.arange(1))[0]
    bad_keys, bad_row = change(keys, row)
    with pytest.raises(UserError, match="^" + re.escape(message)):
        bundle.predict_rows(bad_keys, [bad_row])


def test_a_run_without_onnx_copy_is_refused_with_the_reason(trained: Path, tmp_path: Path
                                                           ) -> None:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    (copy / "model.onnx").unlink()
    with pytest.raises(UserError, match=r"metrics\.json: the run has no ONNX copy"):
        ModelBundle(copy)
    (copy / "params.json").unlink()
    with pytest.raises(UserError, match=r"params\.json: missing"):
        ModelBundle(copy)
