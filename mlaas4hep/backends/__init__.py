"""ML backends: one small adapter per library, imported only when used."""

from __future__ import annotations

from typing import Any

from ..errors import UserError

SUPPORTED: tuple[str, ...] = ("keras",)
"""Backends this version trains (adapter names)."""


def adapter_for(model: Any, *, where: str) -> Any:
    """Wrap what ``model()`` returned in the adapter of its library."""
    from .keras_backend import KerasModel, is_keras_model

    if is_keras_model(model):
        return KerasModel(model, where=where)
    kind = f"{type(model).__module__}.{type(model).__name__}"
    raise UserError(f"{where}: model() returned a {kind}; this version trains Keras models "
                    "(return a compiled keras.Model)")
