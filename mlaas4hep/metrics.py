"""Classifier metrics computed with numpy on predicted scores."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def binary_metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """Loss (binary cross-entropy), accuracy at 0.5 and ROC AUC."""
    p = np.clip(score.astype(np.float64), 1e-7, 1 - 1e-7)
    loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    accuracy = float(np.mean((score >= 0.5) == (y == 1)))
    auc = float(roc_auc_score(y, score)) if len(np.unique(y)) == 2 else float("nan")
    return {"loss": loss, "accuracy": accuracy, "auc": auc}


def multiclass_metrics(y: np.ndarray, proba: np.ndarray, n_classes: int) -> dict[str, float]:
    """Categorical cross-entropy, accuracy of the most probable class, and the macro
    average of the one-vs-rest ROC AUCs."""
    p = np.clip(proba.astype(np.float64), 1e-7, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    y = y.astype(np.int64)
    loss = float(-np.mean(np.log(p[np.arange(len(y)), y])))
    accuracy = float(np.mean(np.argmax(p, axis=1) == y))
    present = np.unique(y)
    auc = float(np.mean([roc_auc_score(y == k, p[:, k]) for k in present])) if len(
        present) > 1 else float("nan")
    return {"loss": loss, "accuracy": accuracy, "auc": auc}


def regression_metrics(y: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    """Mean squared error (the loss) and mean absolute error."""
    error = prediction.astype(np.float64) - y.astype(np.float64)
    return {"loss": float(np.mean(error**2)), "mae": float(np.mean(np.abs(error)))}


def roc_points(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates of the ROC curve."""
    fpr, tpr, _ = roc_curve(y, score)
    return fpr, tpr
