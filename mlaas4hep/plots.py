"""Figures of a run, written as PNG and PDF: training curves, ROC, scores, inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from .metrics import roc_points

LABEL_NAMES = {1: "signal (1)", 0: "background (0)"}
CURVES = {"loss": "Loss", "accuracy": "Accuracy", "auc": "AUC", "mae": "MAE"}


def _save(fig: Any, path: Path, suffixes: tuple[str, ...] = (".png", ".pdf")) -> list[Path]:
    fig.tight_layout()
    written = []
    for suffix in suffixes:
        fig.savefig(path.with_suffix(suffix), dpi=110)
        written.append(path.with_suffix(suffix))
    plt.close(fig)
    return written


def draw_history(ax: Any, history: list[dict[str, Any]], key: str) -> None:
    """Draw one metric (``loss``, ``accuracy``, ``auc``) per epoch, training and validation."""
    title = CURVES.get(key, key)
    chunked = any("chunk" in h for h in history)
    steps = np.arange(1, len(history) + 1)
    for prefix, label in (("", "training"), ("val_", "validation")):
        values = [h.get(prefix + key, np.nan) for h in history]
        if values and not np.all(np.isnan(values)):
            ax.plot(steps, values, marker="o", ms=3, label=label)
    if chunked:
        starts = [h["step"] + 1 for h in history if h["epoch"] == 0][1:]
        for x in starts:
            ax.axvline(x - 0.5, color="grey", lw=0.5, ls=":")
    ax.set_xlim(0.5, max(len(history), 1) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch (dotted lines: next chunk)" if chunked else "epoch")
    ax.set_ylabel(title)
    ax.set_title(f"{title} per epoch")
    if ax.lines:
        ax.legend()
    ax.grid(alpha=0.3)


def plot_history(history: list[dict[str, Any]], folder: Path) -> list[Path]:
    """loss / accuracy / auc per epoch, training and validation (as the seed's figures)."""
    written: list[Path] = []
    for key in CURVES:
        if not any(key in h for h in history):
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        draw_history(ax, history, key)
        written += _save(fig, folder / key)
    return written


def plot_roc(y: np.ndarray, score: np.ndarray, auc: float, folder: Path) -> list[Path]:
    """ROC curve of the test split with its AUC."""
    fpr, tpr = roc_points(y, score)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"test AUC = {auc:.4f}")
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8, label="random")
    ax.set_xlabel("false positive rate (background efficiency)")
    ax.set_ylabel("true positive rate (signal efficiency)")
    ax.set_title("ROC curve (test split)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return _save(fig, folder / "roc")


def plot_scores(y: np.ndarray, score: np.ndarray, folder: Path) -> list[Path]:
    """Classifier score distributions for signal and background (test split)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0, 1, 41)
    for label, name in ((1, "signal"), (0, "background")):
        ax.hist(score[y == label], bins=bins, histtype="step", density=True, lw=1.5,
                label=f"{name} ({int((y == label).sum())} events)")
    ax.set_xlabel("classifier score")
    ax.set_ylabel("normalised events")
    ax.set_title("Score distributions (test split)")
    ax.legend()
    return _save(fig, folder / "scores")


def plot_roc_per_class(y: np.ndarray, proba: np.ndarray, folder: Path) -> list[Path]:
    """One-vs-rest ROC curve of every class (test split)."""
    from sklearn.metrics import roc_auc_score

    fig, ax = plt.subplots(figsize=(5, 5))
    for k in range(proba.shape[1]):
        if 0 < np.sum(y == k) < len(y):
            fpr, tpr = roc_points(y == k, proba[:, k])
            auc = roc_auc_score(y == k, proba[:, k])
            ax.plot(fpr, tpr, label=f"class {k} vs rest: AUC {auc:.4f}")
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8, label="random")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curves, one class vs the rest (test split)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, folder / "roc")


def plot_confusion(y: np.ndarray, proba: np.ndarray, folder: Path) -> list[Path]:
    """Confusion matrix of the most probable class, normalised per true class."""
    k = proba.shape[1]
    counts = np.zeros((k, k))
    np.add.at(counts, (y.astype(np.int64), np.argmax(proba, axis=1)), 1)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * k + 2.5, 1.2 * k + 2))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{share[i, j]:.2f}\n({int(counts[i, j])})", ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix (test split)")
    fig.colorbar(image, ax=ax, label="fraction of the true class")
    return _save(fig, folder / "confusion")


def plot_regression(y: np.ndarray, prediction: np.ndarray, folder: Path) -> list[Path]:
    """Predicted against true target (2D histogram) and the residuals (test split)."""
    fig, (ax, res) = plt.subplots(1, 2, figsize=(10, 4.2))
    lo, hi = np.percentile(np.concatenate([y, prediction]), [0.5, 99.5])
    _, _, _, image = ax.hist2d(y, prediction, bins=50, range=[[lo, hi], [lo, hi]], cmin=1,
                               cmap="viridis")
    ax.plot([lo, hi], [lo, hi], color="red", lw=0.8, ls="--", label="prediction = truth")
    ax.set_xlabel("true target")
    ax.set_ylabel("predicted")
    ax.set_title("Predicted vs true (test split)")
    ax.legend(loc="upper left")
    fig.colorbar(image, ax=ax, label="events")
    residual = prediction - y
    res.hist(residual, bins=60, histtype="step", lw=1.5)
    res.set_xlabel("predicted - true")
    res.set_ylabel("events")
    res.set_title(f"Residuals: mean {residual.mean():.3g}, std {residual.std():.3g}")
    return _save(fig, folder / "predicted")


def plot_input_histograms(histograms: dict[str, dict[str, Any]], folder: Path) -> list[Path]:
    """One figure per input: signal vs background, before and after normalisation.

    ``histograms[name]`` holds ``edges`` (normalised), ``raw_edges`` and
    ``counts`` per label, as made by :class:`mlaas4hep.reports.InputHistograms`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, h in histograms.items():
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        for ax, edges, when in ((axes[0], h["raw_edges"], "before"),
                                (axes[1], h["edges"], "after")):
            for label, counts in sorted(h["counts"].items(), reverse=True):
                total = counts.sum()
                ax.stairs(counts / total if total else counts, edges,
                          label=LABEL_NAMES.get(label, f"label {label}"))
            ax.set_title(f"{name}: {when} normalisation")
            ax.set_ylabel("fraction of values")
            ax.legend()
        written += _save(fig, folder / _safe(name), (".png",))
    return written


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
