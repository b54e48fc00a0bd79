"""XGBoost: ``model()`` returns an ``XGBClassifier``; trained from the chunk stream.

The training split reaches XGBoost through its ``DataIter`` interface into an
external-memory quantile matrix (pages cached on disk), so the data set never
has to fit in memory. Early stopping watches the validation log loss; each
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
from .common import ChunkParts, EpochReport, import_library, sample_weights, with_suffix

log = logging.getLogger("mlaas4hep")

EARLY_STOPPING_ROUNDS = 10


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
        with tempfile.TemporaryDirectory(prefix="mlaas4hep-xgb-") as cache:
            dtrain = self.xgb.ExtMemQuantileDMatrix(
                self._iterator(parts, TRAIN, f"{cache}/train"),
                max_bin=params.get("max_bin", 256))
            evals = [(dtrain, "train")]
            if any(len(y) for _, y in parts(VALIDATION)):
                dval = self.xgb.ExtMemQuantileDMatrix(
                    self._iterator(parts, VALIDATION, f"{cache}/validation"), ref=dtrain)
                evals.append((dval, "validation"))
            log.info("xgboost: up to %d rounds from the chunk stream (external memory), "
                     "early stopping after %d rounds without improvement", rounds, stopping)
            self.booster = self.xgb.train(
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
        """Signal (or class) probabilities, from the best round when early stopping ended
        training."""
        if len(X) == 0:
            return self.task.no_scores()
        best = getattr(self.booster, "best_iteration", None)
        rounds = (0, best + 1) if best is not None else (0, 0)
        return self.booster.predict(self.xgb.DMatrix(X), iteration_range=rounds).astype(
            np.float32)

    def save(self, path: Path) -> Path:
        """XGBoost's own JSON model format (``.json``; ``.ubj`` for binary JSON)."""
        path = with_suffix(path, (".json", ".ubj"))
        self.booster.save_model(str(path))
        return path
