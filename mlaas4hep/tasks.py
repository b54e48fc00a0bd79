"""What is learned: binary (labels 0/1) or multi-class (labels 0..K-1) classification.

The task decides the test metrics and the result plots; every backend asks
it for the per-epoch metrics so that all report the same keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError
from .metrics import binary_metrics, multiclass_metrics


@dataclass(frozen=True)
class Task:
    """Classification into ``n_classes`` classes (2 = binary, one score per event)."""

    n_classes: int = 2

    @property
    def binary(self) -> bool:
        """True for signal-vs-background (a single score per event)."""
        return self.n_classes == 2

    @property
    def name(self) -> str:
        """'binary' or 'K-class'."""
        return "binary" if self.binary else f"{self.n_classes}-class"

    def metrics(self, y: np.ndarray, score: np.ndarray) -> dict[str, float]:
        """loss, accuracy and AUC (one-vs-rest, macro average for several classes)."""
        if self.binary:
            return binary_metrics(y, score)
        return multiclass_metrics(y, score, self.n_classes)

    def plots(self, y: np.ndarray, score: np.ndarray, auc: float, folder: Path) -> list[Path]:
        """ROC and score plots (binary); one-vs-rest ROC and a confusion matrix (classes)."""
        from .plots import plot_confusion, plot_roc, plot_roc_per_class, plot_scores

        if self.binary:
            return plot_roc(y, score, auc, folder) + plot_scores(y, score, folder)
        return plot_roc_per_class(y, score, folder) + plot_confusion(y, score, folder)


def task_for(pairs: list[tuple[str, int]], labels: str | Path) -> Task:
    """The task the labels of labels.txt call for: 0/1, or 0..K-1 with every value used."""
    found = sorted({label for _, label in pairs})
    if found == [0, 1]:
        return Task(2)
    if len(found) >= 3 and found == list(range(len(found))):
        return Task(len(found))
    if len(found) < 2:
        raise UserError(f"{labels}: at least two classes are needed to train a classifier "
                        f"(0 = background, 1 = signal), got only {found}")
    raise UserError(f"{labels}: labels must be 0 (background) and 1 (signal), or the classes "
                    f"0, 1, ..., K-1 with every value used, got {found}")
