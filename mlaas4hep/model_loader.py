"""Loading the user's ``model.py`` and building the model it defines.

``model.py`` is the user's own Python code (as in the original MLaaS4HEP)
and runs as such; what this module adds is clear messages: a syntax error
with file:line, a missing ``model`` function, Keras-2-only arguments such
as ``lr=``, a function that returns nothing.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import UserError, describe

KERAS2_ARGUMENTS = {
    "lr": "learning_rate",
    "decay": "a learning-rate schedule (keras.optimizers.schedules)",
    "input_dim": "keras.Input(shape=(idim,)) as the first layer",
}


def _user_line(exc: BaseException, path: Path) -> str:
    """'file:line' of the deepest frame inside ``path``, or the file alone."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if Path(f.filename).resolve() == path.resolve()]
    return f"{path}:{frames[-1].lineno}" if frames else str(path)


def load_model_module(path: str | Path) -> ModuleType:
    """Import ``model.py`` as a module, turning its errors into clear messages."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    check_syntax(path.read_text(), path)
    spec = importlib.util.spec_from_file_location(f"mlaas4hep_user_model_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise UserError(f"{_user_line(exc, path)}: importing the model file failed: "
                        f"{describe(exc)}") from None
    finally:
        sys.path.remove(str(path.parent.resolve()))
    if not callable(getattr(module, "model", None)):
        defined = [n for n, v in vars(module).items() if inspect.isfunction(v)
                   and v.__module__ == module.__name__]
        found = f" (it defines: {', '.join(defined)})" if defined else ""
        raise UserError(f"{path}: no function 'model' defined{found}; model.py must define "
                        "model(idim) for Keras/PyTorch or model() for scikit-learn/XGBoost")
    return module


def check_syntax(source: str, path: str | Path) -> None:
    """Compile (never run) ``source``; a syntax error becomes ``path:line`` and the reason."""
    try:
        compile(source, str(path), "exec")
    except SyntaxError as exc:
        raise UserError(f"{path}:{exc.lineno}: syntax error: {exc.msg}"
                        f"{_syntax_hint(exc)}") from None


def _syntax_hint(exc: SyntaxError) -> str:
    if "positional argument follows keyword argument" in (exc.msg or ""):
        return " (in compile(), pass metrics as metrics=[...])"
    return ""


def build_model(path: str | Path, idim: int, n_classes: int = 2) -> Any:
    """Call ``model(idim)``, ``model(idim, n_classes)`` or ``model()`` from ``path``."""
    path = Path(path)
    factory = load_model_module(path).model
    try:
        wanted = len(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        wanted = 1
    arguments = (idim, n_classes)[:min(wanted, 2)]
    try:
        built = factory(*arguments)
    except Exception as exc:
        raise UserError(f"{_user_line(exc, path)}: model() failed: "
                        f"{_explain(exc)}") from None
    if built is None:
        raise UserError(f"{path}: model() returned None; did you forget to return the model "
                        "(e.g. 'return ml_model')?")
    return built


def _explain(exc: Exception) -> str:
    text = describe(exc)
    match = re.search(r"Argument\(s\) not recognized: \{'(\w+)'", str(exc)) or re.search(
        r"unexpected keyword argument '(\w+)'", str(exc))
    if match and match.group(1) in KERAS2_ARGUMENTS:
        arg = match.group(1)
        return (f"{text}. '{arg}=' is a Keras 2 argument; Keras 3 uses "
                f"{KERAS2_ARGUMENTS[arg]}, e.g. keras.optimizers.Adam(learning_rate=1e-3)")
    return text
