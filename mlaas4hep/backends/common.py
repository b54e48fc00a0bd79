"""What every backend shares: seeding, the chunk stream type, per-epoch metric records."""

from __future__ import annotations

import importlib
import logging
import os
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError, describe
from ..tasks import Task

log = logging.getLogger("mlaas4hep")

Features = np.ndarray | tuple[np.ndarray, np.ndarray]
"""What a model is fed: X (events x features), or (X, mask) for a model that wants the mask
(``mask == 1`` marks a real value; float32 like X)."""
Batches = Callable[[], Iterator[tuple[Features, np.ndarray]]]
"""Makes a fresh pass of (X, y) per chunk (shuffled within the chunk for training)."""
PairedBatches = Callable[[], Iterator[tuple[tuple[Features, np.ndarray],
                                             tuple[Features, np.ndarray]]]]
"""Makes a fresh pass of ((X, y) training, (X, y) validation) per chunk: both splits from one
read of the files."""
ChunkParts = Callable[[int], Iterator[tuple[np.ndarray, np.ndarray]]]
"""``parts(split)``: a fresh pass of (X, y) per chunk for one split."""
EpochReport = Callable[[dict], "bool | None"]
"""Called after each epoch with its record; returning True stops training."""


ONNX_HINT = ("ONNX export needs the ONNX converters: pip install 'mlaas4hep[onnx]' (onnx, "
             "onnxruntime, tf2onnx, onnxscript, skl2onnx, onnxmltools)")


def copyable(make_copy: Callable[[], Any]) -> bool:
    """True when ``make_copy()`` works (the copy of a model that validates during the next
    epoch); for a model that cannot be copied, the log says that validation reads the files
    again each epoch."""
    try:
        make_copy()
    except Exception as exc:  # the libraries raise several types for what they cannot copy
        log.info("validation reads the files again each epoch: the model cannot be copied "
                 "(%s)", describe(exc))
        return False
    return True


def features(X: np.ndarray, mask: np.ndarray | None, wants_mask: bool) -> Features:
    """X, or (X, mask as float32) for a model that wants the mask."""
    return (X, mask.astype(np.float32)) if wants_mask else X


def take(inputs: Features, rows: Any) -> Features:
    """The events ``rows`` of X or of (X, mask)."""
    return (inputs[0][rows], inputs[1][rows]) if isinstance(inputs, tuple) else inputs[rows]


def minibatches(parts: Iterator[tuple[Features, np.ndarray]], batch_size: int
                ) -> Iterator[tuple[Features, np.ndarray]]:
    """Consecutive mini-batches of each (X, y) part (the last one of a part may be smaller)."""
    for X, y in parts:
        for i in range(0, len(y), batch_size):
            yield take(X, slice(i, i + batch_size)), y[i:i + batch_size]


def n_events(inputs: Features) -> int:
    """Events in X or in (X, mask)."""
    return len(inputs[0]) if isinstance(inputs, tuple) else len(inputs)


def declares_mask(model: Any) -> bool:
    """True when the model asks for (X, mask): ``wants_mask = True`` on the model object."""
    return getattr(model, "wants_mask", False) is True


def import_library(module: str, hint: str) -> Any:
    """Import an ML library on first use, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(hint) from None


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and the ML libraries the model file imported (deterministic ops)."""
    random.seed(seed)
    np.random.seed(seed)
    if "keras" in sys.modules or "tensorflow" in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)


def epoch_record(task: Task, epoch: int, train: tuple[np.ndarray, np.ndarray] | None,
                 validation: tuple[np.ndarray, np.ndarray] | None) -> dict:
    """{"epoch", "loss", "accuracy", "auc", "val_loss", ...} from (labels, scores) pairs."""
    record: dict = {"epoch": epoch}
    if train is not None and len(train[0]):
        record.update(task.metrics(*train))
    if validation is not None and len(validation[0]):
        record.update({f"val_{k}": v for k, v in task.metrics(*validation).items()})
    return record


def sample_weights(y: np.ndarray, class_weight: dict[int, float] | None) -> np.ndarray | None:
    """The weight of each event's class (None without class weights)."""
    if not class_weight:
        return None
    table = np.array([class_weight[k] for k in range(len(class_weight))], dtype=np.float32)
    return table[y.astype(np.int64)]


def with_suffix(path: Path, suffixes: tuple[str, ...]) -> Path:
    """``path`` with the first of ``suffixes`` unless it already has one of them."""
    return path if path.suffix in suffixes else path.with_suffix(suffixes[0])
