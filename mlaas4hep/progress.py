"""Progress bars for long work (shown on terminals, silent in logs and tests)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], *, total: int, desc: str, enabled: bool,
             weight: Any = len) -> Iterator[T]:
    """Yield ``items`` while advancing a bar by ``weight(item)`` events."""
    if not enabled:
        yield from items
        return
    with tqdm(total=total, desc=desc, unit="evt", unit_scale=True, disable=None,
              leave=False) as bar:
        for item in items:
            yield item
            bar.update(weight(item))
