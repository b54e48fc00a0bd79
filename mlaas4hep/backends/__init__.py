"""ML backends: one small adapter per library, imported only when used.

Every adapter has ``name``, ``predict(X)`` (signal probabilities) and
``save(path)``; neural networks train with ``fit_arrays`` (one chunk) and
``fit_stream`` (passes over mini-batches), the others with ``fit_chunks``
(their own procedure over the chunks of each split).
"""

from __future__ import annotations

from typing import Any

from ..errors import UserError
from ..tasks import Task

SUPPORTED: tuple[str, ...] = ("keras", "pytorch", "scikit-learn", "xgboost")
"""Backends this version trains (adapter names)."""


def adapter_for(model: Any, *, where: str, task: Task | None = None) -> Any:
    """Wrap what ``model()`` returned in the adapter of its library (binary by default)."""
    task = task or Task(2)
    from .keras_backend import KerasModel, is_keras_model
    from .sklearn_backend import SklearnModel, is_sklearn_estimator
    from .torch_backend import TorchModel, is_torch_module
    from .xgboost_backend import XGBoostModel, is_xgboost_model

    if is_keras_model(model):
        return KerasModel(model, where=where, task=task)
    if is_torch_module(model):
        return TorchModel(model, where=where, task=task)
    if is_xgboost_model(model):
        return XGBoostModel(model, where=where, task=task)
    if is_sklearn_estimator(model):
        return SklearnModel(model, where=where, task=task)
    kind = f"{type(model).__module__}.{type(model).__name__}"
    raise UserError(f"{where}: model() returned a {kind}, which no backend trains; return a "
                    "compiled keras.Model, a torch.nn.Module, a scikit-learn estimator or an "
                    "xgboost.XGBClassifier")
