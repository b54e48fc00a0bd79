"""XGBoost: ``model()`` returns an ``XGBClassifier``; trained from the chunk stream.

The training split reaches XGBoost through its ``DataIter`` interface into an
external-memory quantile matrix (pages cached on disk), so the data set never
has to fit in memory. The histogram cuts come from a bounded uniform sample of
the training split (XGBoost's own sketch of the whole stream grows with the
data set). Early stopping watches the validation log loss; each
boosting round gives one record (loss, accuracy, AUC, training and
validation), as an epoch does for the neural networks.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
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
    import_library,
    sample_weights,
    with_suffix,
)

log = logging.getLogger("mlaas4hep")

EARLY_STOPPING_ROUNDS = 10
CUTS_SAMPLE_ROWS = 200_000
CUTS_SAMPLE_BYTES = 16 * 2**20
"""The histogram cuts come from at most this many training events (LightGBM's default
sample for its bins) and this many bytes of them."""


def import_xgboost() -> Any:
    """Import xgboost, or say how to install it."""
    return import_library("xgboost", "XGBoost models need xgboost: pip install xgboost-cpu "
                          "(or xgboost for GPUs)")


def is_xgboost_model(obj: Any) -> bool:
    """True for XGBoost's scikit-learn-style models (XGBClassifier, ...)."""
    return type(obj).__module__.startswith("xgboost")


class XGBoostModel:
    """Adapter: external-memory training from the chunk stream, with early stopping."""

    name = "xgboost"
    wants_mask = False

    def __init__(self, model: Any, *, where: str, task: Task):
        self.xgb = import_xgboost()
        self.task = task
        wanted = self.xgb.XGBRegressor if task.regression else self.xgb.XGBClassifier
        if not isinstance(model, wanted):
            raise UserError(f"{where}: model() returned a {type(model).__name__}; "
                            f"{task.name} needs xgboost.{wanted.__name__}(...)")
        self.model = model
        self.where = where
        self.booster: Any = None
        self.class_weight: dict[int, float] | None = None

    def _iterator(self, parts: ChunkParts, split: int, cache: str) -> Any:
        xgb, class_weight = self.xgb, self.class_weight

        class Chunks(xgb.DataIter):
            def __init__(self) -> None:
                self._parts: Iterator[tuple[np.ndarray, np.ndarray]] | None = None
                super().__init__(cache_prefix=cache)

            def next(self, input_data: Callable[..., None]) -> bool:
                if self._parts is None:
                    self._parts = parts(split)
                for X, y in self._parts:
                    if len(y):
                        input_data(data=X, label=y, weight=sample_weights(y, class_weight))
                        return True
                return False

            def reset(self) -> None:
                self._parts = None

        return Chunks()

    def _cuts_reference(self, parts: ChunkParts, n_features: int, events: int,
                        max_bin: int) -> Any:
        """A small quantile matrix on a uniform sample of the training split (seeded), whose
        histogram cuts the external-memory matrices reuse."""
        wanted = max(1, min(CUTS_SAMPLE_ROWS, CUTS_SAMPLE_BYTES // (4 * max(n_features, 1))))
        rate = min(1.0, wanted / max(events, 1))
        rng = np.random.default_rng(0)
        Xs, ys = [], []
        for X, y in parts(TRAIN):
            keep = rng.random(len(y)) < rate if rate < 1 else slice(None)
            Xs.append(X[keep])
            ys.append(y[keep])
        y = np.concatenate(ys)
        if not len(y):
            raise UserError(f"{self.where}: no training events reach the model")
        log.info("xgboost: histogram cuts (%d bins) from %d of %d training events", max_bin,
                 len(y), events)
        return self.xgb.QuantileDMatrix(np.concatenate(Xs), label=y, max_bin=max_bin,
                                        weight=sample_weights(y, self.class_weight))

    def fit_chunks(self, parts: ChunkParts, n_features: int, events: int, *, epochs: int,
                   on_epoch: EpochReport) -> None:
        """Boost ``n_estimators`` rounds (fewer with early stopping) from the stream."""
        params = {k: v for k, v in self.model.get_xgb_params().items() if v is not None}
        if self.task.regression:
            params.update(objective="reg:squarederror", eval_metric=["mae", "rmse"])
        elif self.task.binary:
            params.update(objective="binary:logistic", eval_metric=["error", "auc", "logloss"])
        else:
            params.update(objective="multi:softprob", num_class=self.task.n_classes,
                          eval_metric=["merror", "auc", "mlogloss"])
        rounds = self.model.n_estimators or 100
        stopping = self.model.early_stopping_rounds or EARLY_STOPPING_ROUNDS
        log.info("xgboost: up to %d rounds from the chunk stream (external memory), "
                 "early stopping after %d rounds without improvement", rounds, stopping)
        with tempfile.TemporaryDirectory(prefix="mlaas4hep-xgb-") as cache:
            booster = self._boost(params, parts, n_features, events, cache, rounds=rounds,
                                  stopping=stopping, on_epoch=on_epoch)
        best = getattr(booster, "best_iteration", None)
        self.booster = booster[:best + 1] if best is not None else booster
        if best is not None:
            log.info("xgboost: the model keeps its first %d rounds (best validation loss)",
                     best + 1)

    def _boost(self, params: dict, parts: ChunkParts, n_features: int, events: int, cache: str,
               *, rounds: int, stopping: int, on_epoch: EpochReport) -> Any:
        """Train on external-memory matrices cached under ``cache``; they are freed on return,
        before ``cache`` is removed."""
        max_bin = params.get("max_bin", 256)
        dtrain = self.xgb.ExtMemQuantileDMatrix(
            self._iterator(parts, TRAIN, f"{cache}/train"), max_bin=max_bin,
            ref=self._cuts_reference(parts, n_features, events, max_bin))
        evals = [(dtrain, "train")]
        if any(len(y) for _, y in parts(VALIDATION)):
            evals.append((self.xgb.ExtMemQuantileDMatrix(
                self._iterator(parts, VALIDATION, f"{cache}/validation"), ref=dtrain),
                "validation"))
        return self.xgb.train(
            params, dtrain, num_boost_round=rounds, evals=evals, verbose_eval=False,
            early_stopping_rounds=stopping if len(evals) > 1 else None,
            callbacks=[self._reporter(on_epoch)])

    def _reporter(self, on_epoch: EpochReport) -> Any:
        xgb = self.xgb
        prefix_m = "" if self.task.binary else "m"

        class Report(xgb.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
                record: dict = {"epoch": epoch}
                for name, prefix in (("train", ""), ("validation", "val_")):
                    logs = evals_log.get(name, {})
                    if logs and "rmse" in logs:
                        record[f"{prefix}loss"] = float(logs["rmse"][-1]) ** 2
                        record[f"{prefix}mae"] = float(logs["mae"][-1])
                    elif logs:
                        record[f"{prefix}loss"] = float(logs[f"{prefix_m}logloss"][-1])
                        record[f"{prefix}accuracy"] = 1.0 - float(logs[f"{prefix_m}error"][-1])
                        record[f"{prefix}auc"] = float(logs["auc"][-1])
                return bool(on_epoch(record))

        return Report()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Signal (or class) probabilities, or the regression target."""
        if len(X) == 0:
            return self.task.no_scores()
        return self.booster.predict(self.xgb.DMatrix(X)).astype(np.float32)

    def save(self, path: Path) -> Path:
        """XGBoost's own JSON model format (``.json``; ``.ubj`` for binary JSON)."""
        path = with_suffix(path, (".json", ".ubj"))
        self.booster.save_model(str(path))
        return path

    def to_onnx(self, path: Path) -> Path:
        """ONNX through onnxmltools (input ``X`` float32 (n, features); ``probabilities`` for
        classes)."""
        onnxmltools = import_library("onnxmltools", ONNX_HINT)
        from onnxmltools.convert.common.data_types import FloatTensorType

        path = with_suffix(path, (".onnx",))
        shape = FloatTensorType([None, self.booster.num_features()])
        path.write_bytes(onnxmltools.convert_xgboost(self.booster, initial_types=[("X", shape)])
                         .SerializeToString())
        return path
