"""The output folder of a run, which appears only when the run completes.

Everything is written into a hidden sibling folder first; on success it is
renamed to the final name in one step, so an interrupted or failed run
leaves nothing that looks like a finished result.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from .errors import UserError

log = logging.getLogger("mlaas4hep")


def default_out_dir() -> Path:
    """``mlaas4hep-runs/<date>-<time>`` in the current folder."""
    return Path("mlaas4hep-runs") / time.strftime("%Y%m%d-%H%M%S")


class RunFolder:
    """Context manager: yields the folder to write into; publishes it on success."""

    def __init__(self, final: str | Path | None, *, overwrite: bool = False):
        self.final = Path(final) if final else default_out_dir()
        if self.final.exists() and not overwrite and (
                not self.final.is_dir() or any(self.final.iterdir())):
            raise UserError(f"{self.final}: output folder already exists and is not empty; "
                            "choose another --out-dir or pass --overwrite")
        self.overwrite = overwrite
        self.work = self.final.parent / f".{self.final.name}.incomplete-{os.getpid()}"
        self._handler: logging.Handler | None = None

    def __enter__(self) -> Path:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir()
        self._handler = logging.FileHandler(self.work / "run.log")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(self._handler)
        return self.work

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        assert self._handler is not None
        log.removeHandler(self._handler)
        self._handler.close()
        if exc_type is not None:
            shutil.rmtree(self.work, ignore_errors=True)
            return
        if self.final.exists():
            shutil.rmtree(self.final) if self.final.is_dir() else self.final.unlink()
        os.replace(self.work, self.final)


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON."""
    path.write_text(json.dumps(data, indent=1, default=_plain) + "\n")


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
