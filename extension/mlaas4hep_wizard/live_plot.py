"""The live training figure: loss, accuracy and AUC per epoch, redrawn after every epoch."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from mlaas4hep.plots import CURVES, draw_history


def render_history(history: list[dict[str, Any]]) -> tuple[bytes, dict[str, int]]:
    """PNG of one panel per metric in the records (loss, accuracy, AUC, MAE), and the number
    of points drawn per curve (``loss``, ``val_loss``, ...): one per epoch record."""
    keys = [k for k in CURVES if any(k in h for h in history)] or ["loss", "accuracy", "auc"]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.4 * len(keys), 3.4), squeeze=False)
    points: dict[str, int] = {}
    for ax, key in zip(axes[0], keys, strict=True):
        draw_history(ax, history, key)
        for line in ax.lines:
            if line.get_label() in ("training", "validation"):
                name = key if line.get_label() == "training" else f"val_{key}"
                points[name] = len(line.get_xdata())
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue(), points
