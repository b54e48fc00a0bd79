"""Streamed Keras training reads the files once per epoch: each epoch's validation runs on a
copy of its weights during the next epoch, with the numbers Keras's own validation gives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlaas4hep.backends import adapter_for
from mlaas4hep.backends.common import seed_everything
from mlaas4hep.backends.keras_backend import KerasModel
from mlaas4hep.config import load_params, load_preproc
from mlaas4hep.dataset import Dataset
from mlaas4hep.stream import EventStream, RawChunk
from mlaas4hep.train import train

EPOCHS = 3


def small_mlp(n_features: int) -> object:
    import keras

    net = keras.Sequential([keras.Input((n_features,)), keras.layers.Dense(8, activation="relu"),
                            keras.layers.Dense(1, activation="sigmoid")])
    net.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return net


def streamed_training(samples: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[dict], int]:
    """Epoch records of a streamed training (nothing cached) and the passes over the files
    it made."""
    passes = []
    reads = EventStream.reads

    def counted(stream: EventStream) -> Iterator[RawChunk]:
        passes.append(1)
        return reads(stream)

    monkeypatch.setattr(EventStream, "reads", counted)
    params = load_params(None, chunk_size=1500, nevts=6000, epochs=EPOCHS, batch_size=128,
                         training="standard", cache_mb=0)
    pairs = [(str(samples / "signal.root"), 1), (str(samples / "background.root"), 0)]
    with Dataset.open(pairs, params, load_preproc(None)) as data:
        specs = data.specs()
        passes.clear()
        seed_everything(3)
        model = adapter_for(small_mlp(specs.n_features), where="test")
        return train(model, data, specs, params), len(passes)


def test_one_read_per_epoch_gives_keras_own_validation(samples: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    one_pass, reads = streamed_training(samples, monkeypatch)
    monkeypatch.delattr(KerasModel, "fit_stream_one_pass")  # Keras validating its own pass
    two_passes, reads_two = streamed_training(samples, monkeypatch)
    assert reads_two == 2 * EPOCHS
    # one pass per epoch and one for the last epoch's validation (Keras may start one more
    # at its first fit to look at the data, and drop it)
    assert EPOCHS + 1 <= reads <= EPOCHS + 2
    assert [r["epoch"] for r in one_pass] == list(range(EPOCHS))
    for mine, keras_own in zip(one_pass, two_passes, strict=True):
        assert mine.keys() == keras_own.keys()
        assert {"val_loss", "val_accuracy", "val_auc"} <= mine.keys()
        for key, value in keras_own.items():
            assert mine[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_stop_request_ends_training_one_epoch_later(samples: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A stop asked when epoch 0 is reported (at the end of epoch 1) ends training there;
    epoch 1 still gets its validation and its report."""
    params = load_params(None, chunk_size=1500, nevts=4000, epochs=5, batch_size=128,
                         training="standard", cache_mb=0)
    pairs = [(str(samples / "signal.root"), 1), (str(samples / "background.root"), 0)]
    with Dataset.open(pairs, params, load_preproc(None)) as data:
        specs = data.specs()
        model = adapter_for(small_mlp(specs.n_features), where="test")
        seen: list[dict] = []
        history = train(model, data, specs, params, on_epoch=seen.append,
                        stop=lambda: len(seen) >= 1)
    assert [r["epoch"] for r in history] == [0, 1]
    assert all("val_loss" in r for r in history)
