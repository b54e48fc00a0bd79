"""What is learned: binary (labels 0/1), multi-class (labels 0..K-1) or regression
(a target branch).

The task decides the test metrics and the result plots; every backend asks
it for the per-epoch metrics so that all report the same keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError
from .metrics import binary_metrics, multiclass_metrics, regression_metrics


@dataclass(frozen=True)
class Task:
    """Classification into ``n_classes`` classes (2 = binary, one score per event), or
    regression (``regression=True``: one predicted value per event)."""

    n_classes: int = 2
    regression: bool = False

    @property
    def binary(self) -> bool:
        """True for signal-vs-background (a single score per event)."""
        return self.n_classes == 2 and not self.regression

    @property
    def multiclass(self) -> bool:
        """True for K > 2 classes (K probabilities per event)."""
        return self.n_classes > 2 and not self.regression

    @property
    def name(self) -> str:
        """'binary', 'K-class' or 'regression'."""
        if self.regression:
            return "regression"
        return "binary" if self.binary else f"{self.n_classes}-class"

    def no_scores(self) -> np.ndarray:
        """The predictions for no events: shape (0, K) for K classes, else (0,)."""
        return np.zeros((0, self.n_classes) if self.multiclass else (0,), dtype=np.float32)

    def metrics(self, y: np.ndarray, score: np.ndarray) -> dict[str, float]:
        """loss, accuracy and AUC (one-vs-rest, macro average for several classes); MSE
        (as loss) and MAE for regression."""
        if self.regression:
            return regression_metrics(y, score)
        if self.binary:
            return binary_metrics(y, score)
        return multiclass_metrics(y, score, self.n_classes)

    def plots(self, y: np.ndarray, score: np.ndarray, folder: Path) -> list[Path]:
        """ROC and score plots (binary); one-vs-rest ROC and a confusion matrix (classes);
        predicted against true (regression)."""
        from .plots import (
            plot_confusion,
            plot_regression,
            plot_roc,
            plot_roc_per_class,
            plot_scores,
        )

        if self.regression:
            return plot_regression(y, score, folder)
        if self.binary:
            return plot_roc(y, score, binary_metrics(y, score)["auc"], folder) + plot_scores(
                y, score, folder)
        return plot_roc_per_class(y, score, folder) + plot_confusion(y, score, folder)


def class_weights(params_weight: str | dict[str, float], task: Task,
                  train_events: dict[int, int]) -> dict[int, float] | None:
    """Weight per class from params.json's class_weight ('balanced' uses the training events
    per class), or None when all are 1."""
    if not params_weight:
        return None
    if task.regression:
        raise UserError("params.json: class_weight applies to classification; remove it "
                        "(or 'target') for a regression")
    classes = range(task.n_classes)
    if params_weight == "balanced":
        total = sum(train_events.values())
        return {k: total / (task.n_classes * max(train_events.get(k, 0), 1)) for k in classes}
    weights = {int(k): float(v) for k, v in dict(params_weight).items()}
    unknown = sorted(set(weights) - set(classes))
    if unknown:
        raise UserError(f"params.json: class_weight names class(es) {unknown}, but the labels "
                        f"are {list(classes)}")
    return {k: weights.get(k, 1.0) for k in classes}


def task_for(pairs: list[tuple[str, int]], labels: str | Path, target: str = "") -> Task:
    """The task: regression when a target branch is given, else classification by the
    labels of labels.txt (0/1, or 0..K-1 with every value used)."""
    if target:
        return Task(regression=True)
    found = sorted({label for _, label in pairs})
    if found == [0, 1]:
        return Task(2)
    if len(found) >= 3 and found == list(range(len(found))):
        return Task(len(found))
    if len(found) < 2:
        raise UserError(f"{labels}: at least two classes are needed to train a classifier "
                        f"(0 = background, 1 = signal), got only {found}; or set 'target' in "
                        "params.json for a regression")
    raise UserError(f"{labels}: labels must be 0 (background) and 1 (signal), or the classes "
                    f"0, 1, ..., K-1 with every value used, got {found}")
