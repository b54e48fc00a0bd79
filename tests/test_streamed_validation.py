"""Streamed training reads the files once per epoch: each epoch's validation runs on a copy
of its weights during the next epoch, with the numbers a validation pass of its own gives
(Keras's own validation for Keras models)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlaas4hep.backends import adapter_for
from mlaas4hep.backends.common import seed_everything
from mlaas4hep.backends.keras_backend import KerasModel
from mlaas4hep.backends.torch_backend import TorchModel
from mlaas4hep.config import load_params, load_preproc
from mlaas4hep.dataset import Dataset
from mlaas4hep.stream import EventStream, RawChunk
from mlaas4hep.train import train

EPOCHS = 3
ADAPTERS = {"keras": KerasModel, "torch": TorchModel}


def small_model(framework: str, n_features: int) -> object:
    if framework == "torch":
        from torch import nn

        return nn.Sequential(nn.Linear(n_features, 8), nn.ReLU(), nn.Linear(8, 1))
    import keras

    net = keras.Sequential([keras.Input((n_features,)), keras.layers.Dense(8, activation="relu"),
                            keras.layers.Dense(1, activation="sigmoid")])
    net.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return net


def streamed_training(framework: str, samples: Path, monkeypatch: pytest.MonkeyPatch,
                      keeping: dict | None = None, **options: object) -> tuple[list[dict], int]:
    """Epoch records of a streamed training (nothing kept between passes unless ``keeping``
    says so) and the passes over the files it made."""
    passes = []
    reads = EventStream.reads

    def counted(stream: EventStream) -> Iterator[RawChunk]:
        passes.append(1)
        return reads(stream)

    monkeypatch.setattr(EventStream, "reads", counted)
    params = load_params(None, chunk_size=1500, nevts=6000, epochs=EPOCHS, batch_size=128,
                         training="standard", device="cpu",
                         **({"cache_mb": 0, "spill_mb": 0} | (keeping or {})))
    pairs = [(str(samples / "signal.root"), 1), (str(samples / "background.root"), 0)]
    with Dataset.open(pairs, params, load_preproc(None)) as data:
        specs = data.specs()
        passes.clear()
        importlib.import_module(framework)  # seeded below, as a model file importing it is
        seed_everything(3)
        model = adapter_for(small_model(framework, specs.n_features), where="test",
                            device="cpu")
        return train(model, data, specs, params, **options), len(passes)


@pytest.mark.parametrize("framework", sorted(ADAPTERS))
def test_one_read_per_epoch_gives_the_validation_pass_numbers(
        framework: str, samples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one_pass, reads = streamed_training(framework, samples, monkeypatch)
    monkeypatch.delattr(ADAPTERS[framework], "fit_stream_one_pass")  # a validation pass
    two_passes, reads_two = streamed_training(framework, samples, monkeypatch)
    assert reads_two == 2 * EPOCHS
    assert reads == EPOCHS + 1  # one pass per epoch, one for the last epoch's validation
    assert [r["epoch"] for r in one_pass] == list(range(EPOCHS))
    for mine, own_pass in zip(one_pass, two_passes, strict=True):
        assert mine.keys() == own_pass.keys()
        assert {"val_loss", "val_accuracy", "val_auc"} <= mine.keys()
        for key, value in own_pass.items():
            assert mine[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


@pytest.mark.parametrize("framework", sorted(ADAPTERS))
def test_stop_request_ends_training_one_epoch_later(framework: str, samples: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A stop asked when epoch 0 is reported (at the end of epoch 1) ends training there;
    epoch 1 still gets its validation and its report."""
    seen: list[dict] = []
    history, _ = streamed_training(framework, samples, monkeypatch, on_epoch=seen.append,
                                   stop=lambda: len(seen) >= 1)
    assert [r["epoch"] for r in history] == [0, 1]
    assert all("val_loss" in r for r in history)


def uncopyable_model(framework: str, n_features: int) -> object:
    """A model the one-read path cannot copy: a subclassed Keras model (Keras clones only
    functional and sequential ones), a torch module holding a lock."""
    if framework == "torch":
        import threading

        from torch import nn

        class Locked(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.layer = nn.Linear(n_features, 1)
                self.lock = threading.Lock()

            def forward(self, x: Any) -> Any:
                return self.layer(x)

        return Locked()
    import keras

    class Subclassed(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.dense = keras.layers.Dense(1, activation="sigmoid")

        def call(self, x: Any) -> Any:
            return self.dense(x)

    net = Subclassed()
    net.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return net


@pytest.mark.parametrize("framework", sorted(ADAPTERS))
def test_a_model_that_cannot_be_copied_is_validated_by_passes_of_its_own(
        framework: str, samples: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(sys.modules[__name__], "small_model", uncopyable_model)
    with caplog.at_level("INFO", logger="mlaas4hep"):
        history, reads = streamed_training(framework, samples, monkeypatch)
    assert reads == 2 * EPOCHS
    assert [r["epoch"] for r in history] == list(range(EPOCHS))
    assert all({"loss", "val_loss", "val_auc"} <= r.keys() for r in history)
    assert "validation reads the files again each epoch" in caplog.text


@pytest.mark.parametrize("framework", sorted(ADAPTERS))
def test_a_stream_spilled_to_disk_reads_the_files_once_and_trains_alike(
        framework: str, samples: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``cache_mb`` 0 with ``spill_mb``: the first epoch's prepared chunks go to disk and the
    later epochs (and the last validation) read them back, with the numbers of a training
    that reads the files every epoch; the spilled chunks go when the dataset is closed."""
    reread, reads = streamed_training(framework, samples, monkeypatch)
    assert reads == EPOCHS + 1
    spilled, reads = streamed_training(framework, samples, monkeypatch,
                                       keeping={"spill_mb": 64, "spill_dir": str(tmp_path)})
    assert reads == 1
    assert [r["epoch"] for r in spilled] == list(range(EPOCHS))
    for mine, other in zip(spilled, reread, strict=True):
        assert mine.keys() == other.keys()
        for key, value in other.items():
            assert mine[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    assert list(tmp_path.iterdir()) == []
