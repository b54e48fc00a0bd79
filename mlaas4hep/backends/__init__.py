"""ML backends: one small adapter per library, imported only when used.

Every adapter has ``name``, ``wants_mask`` (whether the model is fed (X, mask)
instead of X), ``predict(X)`` (signal probabilities), ``save(path)`` and
``to_onnx(path)``; neural networks train with ``fit_arrays`` (one chunk) and
``fit_stream`` (passes over mini-batches), the others with ``fit_chunks``
(their own procedure over the chunks of each split).
"""

from __future__ import annotations

from typing import Any

from ..errors import UserError
from ..tasks import Task

SUPPORTED: tuple[str, ...] = ("keras", "pytorch", "scikit-learn", "xgboost")
"""Backends this version trains (adapter names)."""


def adapter_for(model: Any, *, where: str, task: Task | None = None,
                device: str = "auto") -> Any:
    """Wrap what ``model()`` returned in the adapter of its library (binary by default);
    ``device`` (params 'device') places a PyTorch model; the other libraries use the CPU."""
    task = task or Task(2)
    from .common import declares_mask
    from .keras_backend import KerasModel, is_keras_model
    from .sklearn_backend import SklearnModel, is_sklearn_estimator
    from .torch_backend import TorchModel, is_torch_module
    from .xgboost_backend import XGBoostModel, is_xgboost_model

    for is_kind, adapter_class in ((is_keras_model, KerasModel), (is_torch_module, TorchModel),
                                   (is_xgboost_model, XGBoostModel),
                                   (is_sklearn_estimator, SklearnModel)):
        if is_kind(model):
            adapter = adapter_class(model, where=where, task=task)
            if declares_mask(model) and not adapter.wants_mask:
                raise UserError(f"{where}: wants_mask is for Keras and PyTorch models; "
                                f"{adapter.name} models are given X only")
            if hasattr(adapter, "use_device"):
                adapter.use_device(device)
            elif device not in ("auto", "cpu"):
                raise UserError(f"params.json key 'device' is {device!r}: that is for "
                                f"PyTorch models; {adapter.name} models train on the CPU here")
            return adapter
    kind = f"{type(model).__module__}.{type(model).__name__}"
    raise UserError(f"{where}: model() returned a {kind}, which no backend trains; return a "
                    "compiled keras.Model, a torch.nn.Module, a scikit-learn estimator or an "
                    "xgboost.XGBClassifier")
