"""Inline messages: every mistake shows in red next to where it was made, never as a traceback."""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import ipywidgets as w

from mlaas4hep.errors import UserError, describe

log = logging.getLogger("mlaas4hep.wizard")

COLOURS = {"error": "#c62828", "ok": "#2e7d32", "info": "#455a64", "warning": "#e65100"}

F = TypeVar("F", bound=Callable[..., Any])


def message_box() -> w.HTML:
    """An empty message line."""
    return w.HTML("", layout=w.Layout(min_height="1.2em"))


def show(box: w.HTML, text: str, kind: str = "info") -> None:
    """Show ``text`` in ``box`` in the colour of ``kind`` (error, ok, info, warning)."""
    box.value = (f'<span class="mlaas4hep-{kind}" style="color:{COLOURS[kind]}">'
                 f"{html.escape(text)}</span>") if text else ""


def error_text(exc: BaseException) -> str:
    """The message to show for ``exc``: the user's mistake as is, anything else as a bug."""
    if isinstance(exc, UserError):
        return str(exc)
    log.error("unexpected error in the wizard", exc_info=exc)
    return f"unexpected error (please report it): {describe(exc)}"


def guarded(box: Callable[[Any], w.HTML]) -> Callable[[F], F]:
    """Decorate a widget callback (method): errors go to ``box(self)``, never to the notebook."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:
                show(box(self), error_text(exc), "error")
                return None

        return wrapper  # type: ignore[return-value]

    return decorate
