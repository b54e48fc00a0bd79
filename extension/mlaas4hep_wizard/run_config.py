"""What the wizard's choices amount to: the five input files of ``workflow.py``.

Training in the wizard and the Export button write the same files, so the
command shown after an export reproduces the wizard's run exactly.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlaas4hep.config import Params, Preproc, parse_params, parse_preproc
from mlaas4hep.errors import UserError

INPUT_FILES = ("files.txt", "labels.txt", "params.json", "preproc.json", "model.py")


@dataclass
class RunConfig:
    """Files with labels, params.json and preproc.json contents, and model.py source."""

    files: list[tuple[str, int]]
    params: dict[str, Any]
    preproc: dict[str, Any] = field(default_factory=dict)
    model_source: str = ""

    def check(self) -> tuple[Params, Preproc]:
        """Check everything with the framework's own rules (same messages as the CLI)."""
        if not self.files:
            raise UserError("Data: add at least one signal and one background file")
        if not self.model_source.strip():
            raise UserError("Model: the model source is empty")
        return parse_params(self.params), parse_preproc(self.preproc)

    def write(self, folder: str | Path) -> dict[str, Path]:
        """Write files.txt, labels.txt, params.json, preproc.json and model.py into ``folder``."""
        self.check()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        texts = {
            "files.txt": "".join(f"{name}\n" for name, _ in self.files),
            "labels.txt": "".join(f"{label}\n" for _, label in self.files),
            "params.json": json.dumps(self.params, indent=2) + "\n",
            "preproc.json": json.dumps(self.preproc, indent=2) + "\n",
            "model.py": self.model_source.rstrip() + "\n",
        }
        paths = {}
        for name, text in texts.items():
            tmp = folder / f".{name}.incomplete"
            tmp.write_text(text)
            tmp.replace(folder / name)
            paths[name] = folder / name
        return paths


def workflow_command(folder: str | Path, out_dir: str = "run") -> str:
    """The shell command that runs ``workflow.py`` on the files exported to ``folder``
    (the seed's command, run inside that folder; outputs in ``folder/out_dir``)."""
    return (f"cd {shlex.quote(str(folder))} && workflow.py --files=files.txt "
            "--labels=labels.txt --model=model.py --params=params.json --preproc=preproc.json "
            f"--out-dir={shlex.quote(out_dir)}")
