"""scikit-learn estimators: ``model()`` returns an estimator.

Estimators with ``partial_fit`` (SGDClassifier, MLPClassifier, GaussianNB,
...) are streamed: every chunk of the training split in every epoch. The
others are fitted once on the training split gathered in memory, after a
check that it fits (the message gives the estimate).
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..split import TRAIN, VALIDATION
from ..tasks import Task
from .common import (
    ONNX_HINT,
    ChunkParts,
    EpochReport,
    epoch_record,
    import_library,
    sample_weights,
    with_suffix,
)

log = logging.getLogger("mlaas4hep")



def is_sklearn_estimator(obj: Any) -> bool:
    """True for scikit-learn estimators (module ``sklearn.*``, or with ``fit`` and
    ``get_params`` as scikit-learn's API asks)."""
    return type(obj).__module__.startswith("sklearn") or (
        callable(getattr(obj, "fit", None)) and callable(getattr(obj, "get_params", None))
        and not type(obj).__module__.startswith("xgboost"))


def available_memory() -> int:
    """Bytes of memory available now (MemAvailable), or of the machine."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class SklearnModel:
    """Adapter: streamed ``partial_fit`` or one in-memory ``fit``."""

    name = "scikit-learn"
    wants_mask = False

    def __init__(self, model: Any, *, where: str, task: Task):
        self.model = model
        self.task = task
        self.where = where
        self.samples_seen = 0
        self.class_weight: dict[int, float] | None = None
        scores = ("predict_proba", "decision_function")
        if not task.regression and not any(callable(getattr(model, m, None)) for m in scores):
            raise UserError(f"{where}: {type(model).__name__} gives neither predict_proba nor "
                            "decision_function; a classifier is needed (e.g. "
                            "SVC(probability=True))")

    @property
    def streams(self) -> bool:
        """True when the estimator learns chunk by chunk (``partial_fit``)."""
        return callable(getattr(self.model, "partial_fit", None))

    def fit_chunks(self, parts: ChunkParts, n_features: int, events: int, *, epochs: int,
                   on_epoch: EpochReport) -> None:
        """Train on the training split: streamed over chunks, or in memory."""
        if self.streams:
            self._fit_streamed(parts, epochs, on_epoch)
        else:
            self._fit_in_memory(parts, n_features, events, on_epoch)

    def _fit_streamed(self, parts: ChunkParts, epochs: int, on_epoch: EpochReport) -> None:
        log.info("%s: partial_fit on every chunk, %d epoch(s)", type(self.model).__name__,
                 epochs)
        classes = {} if self.task.regression else {"classes": np.arange(self.task.n_classes)}
        for epoch in range(epochs):
            seen_y, seen_score = [], []
            for X, y in parts(TRAIN):
                if len(y) == 0:
                    continue
                self._call("partial_fit", X, y, **classes)
                self.samples_seen += len(y)
                seen_y.append(y)
                seen_score.append(self.predict(X))
            seen = (np.concatenate(seen_y), np.concatenate(seen_score)) if seen_y else None
            if on_epoch(epoch_record(self.task, epoch, seen, self._evaluate(parts))):
                return

    def _fit_in_memory(self, parts: ChunkParts, n_features: int, events: int,
                       on_epoch: EpochReport) -> None:
        needed = events * n_features * 4 * 2  # float32 matrix, and a copy inside fit
        free = available_memory()
        if needed > 0.8 * free:
            raise UserError(
                f"{self.where}: {type(self.model).__name__} has no partial_fit, so it is fitted "
                f"on the whole training split in memory: {events:,} events x {n_features} "
                f"features need about {needed / 2**30:.1f} GiB, but {free / 2**30:.1f} GiB are "
                "available; use fewer events (nevts), fewer branches, or an estimator with "
                "partial_fit (SGDClassifier, MLPClassifier, GaussianNB)")
        X, y = _gather(parts(TRAIN))
        log.info("%s: fit on %d training events in memory (%.0f MB)", type(self.model).__name__,
                 len(y), X.nbytes / 2**20)
        self._call("fit", X, y)
        self.samples_seen += len(y)
        on_epoch(epoch_record(self.task, 0, (y, self.predict(X)), self._evaluate(parts)))

    def _call(self, method: str, X: np.ndarray, y: np.ndarray, **kwargs: Any) -> None:
        weights = sample_weights(y, self.class_weight)
        if weights is None:
            getattr(self.model, method)(X, y, **kwargs)
            return
        try:
            getattr(self.model, method)(X, y, sample_weight=weights, **kwargs)
        except TypeError as exc:
            if "sample_weight" not in str(exc):
                raise
            raise UserError(f"{self.where}: {type(self.model).__name__}.{method} takes no "
                            "sample weights; remove class_weight from params.json") from None

    def _evaluate(self, parts: ChunkParts) -> tuple[np.ndarray, np.ndarray] | None:
        labels, scores = [], []
        for X, y in parts(VALIDATION):
            if len(y):
                labels.append(y)
                scores.append(self.predict(X))
        return (np.concatenate(labels), np.concatenate(scores)) if labels else None

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Signal probabilities, or class probabilities (n, K) for K classes
        (``predict_proba``; a logistic/softmax of ``decision_function`` without it)."""
        if len(X) == 0:
            return self.task.no_scores()
        if self.task.regression:
            return self.model.predict(X).astype(np.float32)
        if callable(getattr(self.model, "predict_proba", None)):
            proba = self.model.predict_proba(X)
        else:
            d = self.model.decision_function(X)
            if d.ndim == 1:
                return (1 / (1 + np.exp(-d))).astype(np.float32)
            e = np.exp(d - d.max(axis=1, keepdims=True))
            proba = e / e.sum(axis=1, keepdims=True)
        return (proba[:, 1] if self.task.binary else proba).astype(np.float32)

    def save(self, path: Path) -> Path:
        """Pickle (``.pkl``; load with the same scikit-learn version)."""
        path = with_suffix(path, (".pkl",))
        with open(path, "wb") as handle:
            pickle.dump(self.model, handle)
        return path

    def to_onnx(self, path: Path) -> Path:
        """ONNX through skl2onnx (classifiers give ``probabilities`` without a ZipMap)."""
        skl2onnx = import_library("skl2onnx", ONNX_HINT)
        path = with_suffix(path, (".onnx",))
        example = np.zeros((1, self.model.n_features_in_), dtype=np.float32)
        options = None if self.task.regression else {id(self.model): {"zipmap": False}}
        path.write_bytes(skl2onnx.to_onnx(self.model, example, options=options)
                         .SerializeToString())
        return path


def _gather(parts: Iterator[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    Xs, ys = zip(*((X, y) for X, y in parts if len(y)), strict=True)
    return np.concatenate(Xs), np.concatenate(ys)
