"""Model templates: a few hyper-parameters in, the source of a ``model.py`` out.

Each template belongs to a backend of the framework; a template appears in
the wizard only when the framework can train its backend
(:data:`mlaas4hep.backends.SUPPORTED`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlaas4hep.errors import UserError


@dataclass(frozen=True)
class Knob:
    """One hyper-parameter: its widget kind, default and allowed range or choices."""

    name: str
    label: str
    default: Any
    kind: str  # "layers", "int", "float", "choice"
    low: float = 0.0
    high: float = 1.0
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelTemplate:
    """A named ``model.py`` generator for one backend."""

    name: str
    backend: str
    description: str
    knobs: tuple[Knob, ...]

    def render(self, values: dict[str, Any]) -> str:
        """The model.py source for ``values`` (checked; unknown or bad values refused)."""
        checked = {k.name: check_knob(k, values.get(k.name, k.default)) for k in self.knobs}
        return RENDERERS[self.name](checked)


def parse_layers(text: str) -> list[int]:
    """'128, 64' -> [128, 64]: hidden layer sizes, each between 1 and 4096."""
    try:
        sizes = [int(part) for part in str(text).replace(" ", "").split(",") if part]
    except ValueError:
        raise UserError(f"Model: hidden layers must be sizes separated by commas, e.g. "
                        f"'128, 64', got {text!r}") from None
    if not sizes or not all(1 <= n <= 4096 for n in sizes):
        raise UserError(f"Model: hidden layers need 1 to 4096 units each, got {text!r}")
    return sizes


def check_knob(knob: Knob, value: Any) -> Any:
    """``value`` if allowed for ``knob``, else a UserError naming it."""
    if knob.kind == "layers":
        return parse_layers(value)
    if knob.kind == "choice":
        if value not in knob.choices:
            raise UserError(f"Model: {knob.label} must be one of {', '.join(knob.choices)}, "
                            f"got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            knob.low <= value <= knob.high):
        raise UserError(f"Model: {knob.label} must be a number in [{knob.low}, {knob.high}], "
                        f"got {value!r}")
    return int(value) if knob.kind == "int" else float(value)


def _keras_mlp(v: dict[str, Any]) -> str:
    layers = []
    for units in v["hidden_layers"]:
        layers.append(f"        Dense({units}, activation={v['activation']!r}),")
        if v["dropout"] > 0:
            layers.append(f"        Dropout({v['dropout']:g}),")
    body = "\n".join(layers)
    return f'''# Keras MLP made by the MLaaS4HEP wizard (the seed's model, Keras 3).
from keras.layers import Dense, Dropout, Input
from keras.models import Sequential
from tensorflow import keras


def model(idim):
    "A fully connected network: {', '.join(map(str, v['hidden_layers']))} units, sigmoid output"
    ml_model = Sequential([
        Input(shape=(idim,)),
{body}
        Dense(1, activation='sigmoid'),
    ])
    ml_model.compile(optimizer=keras.optimizers.Adam(learning_rate={v['learning_rate']:g}),
                     loss=keras.losses.BinaryCrossentropy(),
                     metrics=[keras.metrics.AUC(name='auc'), 'accuracy'])
    return ml_model
'''


def _torch_mlp(v: dict[str, Any]) -> str:
    layers, width = [], "idim"
    for units in v["hidden_layers"]:
        layers.append(f"            nn.Linear({width}, {units}), "
                      f"{ACTIVATIONS_TORCH[v['activation']]},")
        if v["dropout"] > 0:
            layers.append(f"            nn.Dropout({v['dropout']:g}),")
        width = str(units)
    body = "\n".join(layers)
    return f'''# PyTorch MLP made by the MLaaS4HEP wizard: one logit per event.
import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, idim):
        super().__init__()
        self.layers = nn.Sequential(
{body}
            nn.Linear({width}, 1))

    def forward(self, x):
        return self.layers(x)

    def configure_training(self):
        optimizer = torch.optim.Adam(self.parameters(), lr={v['learning_rate']:g})
        return nn.BCEWithLogitsLoss(), optimizer


def model(idim):
    return MLP(idim)
'''


def _sklearn_gbt(v: dict[str, Any]) -> str:
    return f'''# Gradient-boosted trees (scikit-learn, histogram) made by the MLaaS4HEP wizard.
from sklearn.ensemble import HistGradientBoostingClassifier


def model():
    return HistGradientBoostingClassifier(max_iter={v['trees']}, max_depth={v['depth']},
                                          learning_rate={v['learning_rate']:g}, random_state=0)
'''


def _xgboost(v: dict[str, Any]) -> str:
    return f'''# XGBoost made by the MLaaS4HEP wizard: trained from the chunk stream.
from xgboost import XGBClassifier


def model():
    return XGBClassifier(n_estimators={v['trees']}, max_depth={v['depth']},
                         learning_rate={v['learning_rate']:g}, tree_method="hist",
                         early_stopping_rounds=10, random_state=0)
'''


ACTIVATIONS_TORCH = {"relu": "nn.ReLU()", "elu": "nn.ELU()", "tanh": "nn.Tanh()",
                     "selu": "nn.SELU()"}
RENDERERS = {"Keras MLP": _keras_mlp, "PyTorch MLP": _torch_mlp,
             "Gradient-boosted trees (scikit-learn)": _sklearn_gbt, "XGBoost": _xgboost}
MLP_KNOBS = (Knob("hidden_layers", "hidden layers", "128, 64", "layers"),
             Knob("activation", "activation", "relu", "choice",
                  choices=("relu", "elu", "tanh", "selu")),
             Knob("dropout", "dropout", 0.5, "float", 0.0, 0.9),
             Knob("learning_rate", "learning rate", 1e-3, "float", 1e-6, 1.0))
TREE_KNOBS = (Knob("trees", "trees (max)", 200, "int", 1, 5000),
              Knob("depth", "max depth", 4, "int", 1, 20),
              Knob("learning_rate", "learning rate", 0.1, "float", 1e-4, 1.0))

TEMPLATES: tuple[ModelTemplate, ...] = (
    ModelTemplate("Keras MLP", "keras", "The seed's multilayer perceptron: Dense layers with "
                  "dropout, Adam, binary cross-entropy.", MLP_KNOBS),
    ModelTemplate("PyTorch MLP", "pytorch", "The same network in PyTorch (Linear layers, "
                  "dropout, Adam, BCEWithLogitsLoss).", MLP_KNOBS),
    ModelTemplate("Gradient-boosted trees (scikit-learn)", "scikit-learn",
                  "HistGradientBoostingClassifier, fitted on the training split in memory.",
                  TREE_KNOBS),
    ModelTemplate("XGBoost", "xgboost", "Boosted decision trees trained from the chunk stream "
                  "(external memory), early stopping on the validation split.", TREE_KNOBS),
)


def available_templates() -> list[ModelTemplate]:
    """The templates whose backend the installed framework can train."""
    from mlaas4hep.backends import SUPPORTED

    return [t for t in TEMPLATES if t.backend in SUPPORTED]
