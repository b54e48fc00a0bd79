"""ONNX copies of trained models, checked against the native model before they are kept.

Every backend's adapter has ``to_onnx(path)``. :func:`export_onnx` writes the
file, runs it with onnxruntime on a batch of events and keeps it only when
its scores equal the native ``predict`` within :data:`RTOL`/:data:`ATOL`
(``np.allclose``); otherwise the file is removed and the reason reported.
:func:`onnx_scores` turns a session's outputs into the scores ``predict``
gives (one per event, or one per class), for anything that serves the file.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .backends.common import ONNX_HINT, Features, n_events, take
from .errors import UserError, describe
from .tasks import Task

log = logging.getLogger("mlaas4hep")

RTOL = 1e-4
ATOL = 1e-5
"""ONNX scores must match the native model's: |onnx - native| <= ATOL + RTOL * |native|."""
CHECK_EVENTS = 1000
"""Events (from the first chunk) on which the ONNX file is checked."""


def onnx_session(path: str | Path) -> Any:
    """An onnxruntime session on the CPU for ``path``: one thread per call, that does not
    spin while waiting (concurrent calls, e.g. the inference service's, run side by side)."""
    try:
        import onnxruntime
    except ImportError:
        raise UserError(ONNX_HINT) from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_scores(session: Any, X: Features, task: Task) -> np.ndarray:
    """The scores of ``X`` (float32 (n, features), or (X, mask) for a model that takes the
    mask) as the native ``predict`` gives them.

    Classifier converters give (label, probabilities): the ``probabilities``
    output is used, its signal column for binary tasks.
    """
    arrays = X if isinstance(X, tuple) else (X,)
    feed = {i.name: np.ascontiguousarray(a, np.float32)
            for i, a in zip(session.get_inputs(), arrays, strict=True)}
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, feed), strict=True))
    scores = np.asarray(outputs.get("probabilities", outputs[names[-1]]), dtype=np.float32)
    if task.multiclass:
        return scores
    if task.binary and scores.ndim == 2 and scores.shape[1] == 2:
        return scores[:, 1]
    return scores.reshape(n_events(X))


def export_onnx(adapter: Any, path: Path, X: Features, task: Task) -> dict[str, Any]:
    """Write ``adapter``'s model as ONNX at ``path`` and check it on ``X``.

    Returns what metrics.json records: the file, the events checked, the
    largest difference and the tolerance; or ``skipped``/``error`` with the
    reason, and then no file is left.
    """
    tolerance = {"rtol": RTOL, "atol": ATOL}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            written = adapter.to_onnx(path)
            session = onnx_session(written)
    except UserError as exc:  # a converter is not installed
        log.info("no ONNX copy: %s", exc)
        return {"skipped": str(exc)}
    except Exception as exc:  # the converter cannot handle this model
        path.unlink(missing_ok=True)
        reason = re.sub(r"\x1b\[[0-9;]*m", "", describe(exc))[:300]
        log.warning("no ONNX copy of the %s model: %s", adapter.name, reason)
        return {"error": reason}
    X = take(X, slice(0, CHECK_EVENTS))
    native = adapter.predict(X)
    exported = onnx_scores(session, X, task)
    if exported.shape != native.shape:
        problem = f"its scores have shape {exported.shape}, the model's {native.shape}"
    else:
        diff = float(np.max(np.abs(exported - native), initial=0.0))
        problem = "" if np.allclose(exported, native, **tolerance) else (
            f"its scores differ from the model's by up to {diff:.3g} on {n_events(X)} events "
            f"(tolerance rtol {RTOL:g}, atol {ATOL:g})")
    if problem:
        written.unlink()
        log.warning("no ONNX copy of the %s model: %s", adapter.name, problem)
        return {"error": problem, "events_checked": n_events(X), **tolerance}
    log.info("write %s (ONNX; same scores as the %s model on %d events, largest difference "
             "%.2g)", written, adapter.name, n_events(X), diff)
    return {"file": written.name, "events_checked": n_events(X), "max_abs_diff": diff, **tolerance}
