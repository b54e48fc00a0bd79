"""The one exception type for mistakes a user can fix.

Anything raised as :class:`UserError` is shown as a single clear line and
the command exits with status 2; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake in the user's inputs (file, key, value) with a clear message."""


def did_you_mean(name: str, choices: Iterable[str], *, n: int = 3) -> str:
    """Return ``" (did you mean 'a', 'b'?)"`` for close matches, or ``""``."""
    matches = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.6)
    if not matches:
        return ""
    return " (did you mean " + ", ".join(repr(m) for m in matches) + "?)"


def short_list(names: Iterable[str], *, limit: int = 12) -> str:
    """Join names for a message, eliding after ``limit`` entries."""
    names = list(names)
    shown = ", ".join(names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names) - limit} more)"
    return shown


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception from a library, on one line."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
