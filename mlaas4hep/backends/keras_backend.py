"""Keras 3 (TensorFlow) models: training on chunks or on a stream of chunks."""

from __future__ import annotations

import collections
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..tasks import Task
from .common import (
    ONNX_HINT,
    Batches,
    EpochReport,
    Features,
    PairedBatches,
    copyable,
    declares_mask,
    import_library,
    n_events,
    with_suffix,
)

BATCHES_AHEAD = 8
"""Mini-batches kept ready for a streamed Keras training."""


def import_keras() -> Any:
    """Import Keras with TensorFlow logging quiet, or say how to install it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return import_library("keras", "Keras models need TensorFlow: pip install "
                          "'tensorflow-cpu>=2.16' keras")


def is_keras_model(obj: Any) -> bool:
    """True if ``obj`` is a Keras model (without importing Keras if not loaded)."""
    return type(obj).__module__.startswith("keras") or any(
        c.__module__.startswith("keras") for c in type(obj).__mro__)


class KerasModel:
    """Adapter giving every front the same train / predict / save calls."""

    name = "keras"

    def __init__(self, model: Any, *, where: str, task: Task):
        keras = import_keras()
        self.task = task
        self.class_weight: dict[int, float] | None = None
        if not getattr(model, "compiled", False) or model.optimizer is None:
            raise UserError(f"{where}: the Keras model is not compiled; call "
                            "model.compile(optimizer=..., loss=..., metrics=[...]) in model()")
        self.model = model
        self.wants_mask = _wants_mask(model, where)
        self._ensure_metrics(keras)

    def _ensure_metrics(self, keras: Any) -> None:
        config = self.model.get_compile_config() or {}
        # strings stay strings: Keras resolves "accuracy" for the loss (binary accuracy
        # here) only at compile time; keras.metrics.get("accuracy") is exact-match accuracy
        metrics = [m if isinstance(m, str) else keras.metrics.get(m)
                   for m in (config.get("metrics") or [])]
        names = {m if isinstance(m, str) else m.name for m in metrics}
        if self.task.regression:
            if "mae" not in names:
                metrics.append("mae")
        else:
            if "auc" not in names and self.task.binary:  # Keras's AUC is for binary labels
                metrics.append(keras.metrics.AUC(name="auc"))
            if not names & {"accuracy", "acc", "binary_accuracy"}:
                metrics.append("accuracy")
        self.model.compile(optimizer=self.model.optimizer, loss=self.model.loss,
                           metrics=metrics)

    def fit_arrays(self, X: Features, y: np.ndarray, validation: tuple | None, *,
                   epochs: int, batch_size: int, on_epoch: EpochReport) -> None:
        """Train ``epochs`` epochs on arrays (one chunk), reporting each epoch."""
        if validation is not None:
            validation = (_keras_x(validation[0]), validation[1])
        self.model.fit(_keras_x(X), y.astype(np.float32), validation_data=validation,
                       epochs=epochs, class_weight=self.class_weight, batch_size=batch_size,
                       shuffle=True, verbose=0, callbacks=[_epoch_callback(on_epoch)])

    def fit_stream(self, train: Batches, validation: Batches | None, n_features: int, *,
                   epochs: int, batch_size: int, on_epoch: EpochReport,
                   events: tuple[int, int]) -> None:
        """Train ``epochs`` passes over the chunks (``events``: training and validation
        events per pass). One tf.data pipeline runs through all epochs: each pass asks for
        the chunks anew, tf.data cuts them into mini-batches and keeps the next ones ready,
        across epoch ends too."""
        self.model.fit(self._batches(train, n_features, batch_size), epochs=epochs, verbose=0,
                       shuffle=False, steps_per_epoch=_steps(events[0], batch_size),
                       class_weight=self.class_weight,
                       validation_data=(self._batches(validation, n_features, batch_size)
                                        if validation else None),
                       validation_steps=_steps(events[1], batch_size) if validation else None,
                       callbacks=[_epoch_callback(on_epoch)])

    def _batches(self, make: Batches, n_features: int, batch_size: int,
                 passes: int | None = None) -> Any:
        """A tf.data pipeline of the mini-batches of the parts ``make()`` gives, pass after
        pass (``passes``, None: no end), the next ones kept ready, across pass ends too.
        tf.data's autotuning is off: tearing its threads down at the end of ``fit`` could
        take seconds."""
        import tensorflow as tf

        x = tf.TensorSpec((None, n_features), tf.float32)
        signature = ((x, x) if self.wants_mask else x, tf.TensorSpec((None,), tf.float32))
        options = tf.data.Options()
        options.autotune.enabled = False
        chunks = tf.data.Dataset.from_generator(make, output_signature=signature)
        return (chunks.rebatch(batch_size).repeat(passes).prefetch(BATCHES_AHEAD)
                .with_options(options))

    def copyable(self) -> bool:
        """True when the model can have the twin of :meth:`fit_stream_one_pass` (Keras can
        clone it)."""
        return copyable(lambda: _deferred_validation(self.model, lambda logs: None))

    def fit_stream_one_pass(self, paired: PairedBatches, validation: Batches, n_features: int,
                            *, epochs: int, batch_size: int, on_epoch: EpochReport,
                            events: tuple[int, int]) -> None:
        """As :meth:`fit_stream` with validation, reading the files once per epoch: the
        weights at the end of epoch k are copied into a twin model, which is checked on the
        validation events read for epoch k+1, between its training steps (the same events and
        metrics as Keras's own validation), so epoch k is reported at the end of epoch k+1;
        the last epoch's validation is a pass of its own. The model must be
        :meth:`copyable` (Keras cannot clone a subclassed model). One ``fit`` and one
        tf.data pipeline run through all epochs (pass k is epoch k)."""
        deferred = _deferred_validation(self.model, on_epoch)
        pass_numbers = itertools.count()

        def training() -> Iterator[tuple[Features, np.ndarray]]:
            """One pass: training parts, the validation parts handed to the twin (from the
            second pass on); the last training part only once every validation part is
            handed over, so the epoch cannot end before its validation events are all
            there."""
            number = next(pass_numbers)
            parts = deferred.parts[number]
            held = None
            for train_part, validation_part in paired():
                if number > 0 and len(validation_part[1]):
                    parts.append(validation_part)
                if len(train_part[1]):
                    if held is not None:
                        yield held
                    held = train_part
            if held is not None:
                yield held

        self.model.fit(self._batches(training, n_features, batch_size, epochs),
                       epochs=epochs, verbose=0, shuffle=False,
                       steps_per_epoch=_steps(events[0], batch_size),
                       class_weight=self.class_weight, callbacks=[deferred])
        deferred.finish(validation)

    def predict(self, X: Features, batch_size: int = 4096) -> np.ndarray:
        """Signal scores in [0, 1] (one per event), or class probabilities (n, K)."""
        if n_events(X) == 0:
            return self.task.no_scores()
        out = np.asarray(self.model.predict(_keras_x(X), batch_size=batch_size, verbose=0))
        if self.task.binary or self.task.regression:
            return out.reshape(-1)
        if out.ndim != 2 or out.shape[1] != self.task.n_classes:
            raise UserError(f"the model gives output shape {out.shape}; for "
                            f"{self.task.n_classes} classes it needs "
                            f"Dense({self.task.n_classes}, activation='softmax') last")
        return out

    def save(self, path: Path) -> Path:
        """Save in Keras's native format (``.keras`` unless ``.h5`` is asked for)."""
        path = with_suffix(path, (".keras", ".h5"))
        self.model.save(path)
        return path

    def to_onnx(self, path: Path) -> Path:
        """ONNX through Keras's exporter (tf2onnx): float32 (n, features) in, the model's
        output (probabilities) out."""
        import_library("tf2onnx", ONNX_HINT)
        path = with_suffix(path, (".onnx",))
        self.model.export(str(path), format="onnx", verbose=False)
        return path


def _wants_mask(model: Any, where: str) -> bool:
    """A model with two inputs (or ``wants_mask = True``) gets (X, mask); one input, X."""
    try:
        n_inputs = len(model.inputs)
    except (AttributeError, ValueError):  # not built yet: one input
        n_inputs = 1
    if n_inputs > 2 or (declares_mask(model) and n_inputs != 2):
        raise UserError(f"{where}: the Keras model has {n_inputs} input(s); it can take X, or "
                        "(X, mask) with two inputs of the same shape")
    return n_inputs == 2


def _steps(events: int, batch_size: int) -> int:
    """Mini-batches in a pass over ``events`` events (the last one may be smaller)."""
    return max(1, -(-events // batch_size))


def _keras_x(X: Features) -> Any:
    """Keras takes several inputs as a list."""
    return list(X) if isinstance(X, tuple) else X


def _epoch_callback(on_epoch: EpochReport) -> Any:
    """A Keras callback forwarding the epoch number and its logs (loss, auc, val_*...);
    training stops when ``on_epoch`` returns True."""
    keras = import_keras()

    class EpochCallback(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if on_epoch({"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}}):
                self.model.stop_training = True

    return EpochCallback()


class _DeferredValidation:
    """The callback of :meth:`KerasModel.fit_stream_one_pass` (mixed into a Keras callback by
    :func:`_deferred_validation`): the twin model, the validation parts of each pass waiting
    for it, and the epoch whose weights it holds, waiting for its validation."""

    def __init__(self, model: Any, on_epoch: EpochReport):
        super().__init__()
        keras = import_keras()
        self.twin = keras.models.clone_model(model)
        self.twin.compile_from_config(model.get_compile_config())
        self.on_epoch = on_epoch
        self.parts: dict[int, collections.deque] = collections.defaultdict(collections.deque)
        """Validation parts by pass (pass k is read for epoch k: the next pass may start
        while an epoch ends)."""
        self.epoch = 0
        self.waiting: tuple[int, dict] | None = None
        """(epoch, training logs) of the epoch whose weights the twin holds."""
        self.checked: dict = {}
        """The twin's metrics over the validation parts checked since it got the weights."""

    def _check(self, X: Features, y: np.ndarray) -> None:
        """Add one validation part to the twin's metrics (Keras's test step, as
        ``model.evaluate`` runs it, without resetting them)."""
        self.twin.make_test_function()
        logs = self.twin.test_function(iter([(_keras_x(X), y, None)]))
        self.checked = {k: float(v) for k, v in logs.items()}

    def _drain(self) -> None:
        if self.waiting is None:
            return
        parts = self.parts[self.epoch]
        while parts:
            self._check(*parts.popleft())

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._drain()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.waiting is not None:
            self._drain()
            if self._report():
                self.model.stop_training = True
        self.parts.pop(epoch, None)
        self.waiting = (epoch, {k: float(v) for k, v in (logs or {}).items()})
        self.twin.set_weights(self.model.get_weights())
        self.twin.reset_metrics()
        self.checked = {}

    def _report(self) -> bool:
        assert self.waiting is not None
        epoch, logs = self.waiting
        values = {f"val_{k}": v for k, v in self.checked.items()}
        return bool(self.on_epoch({"epoch": epoch, **logs, **values}))

    def finish(self, validation: Batches) -> None:
        """The last epoch's validation: a pass of its own, then its report."""
        if self.waiting is None:
            return
        for X, y in validation():
            self._check(X, y)
        self._report()


def _deferred_validation(model: Any, on_epoch: EpochReport) -> Any:
    """A :class:`_DeferredValidation` Keras callback for ``model``."""
    keras = import_keras()

    class DeferredValidation(_DeferredValidation, keras.callbacks.Callback):
        pass

    return DeferredValidation(model, on_epoch)
