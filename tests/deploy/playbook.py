"""Run the project's Ansible playbook (ansible/site.yml) from the tests' venv."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class PlaybookRun:
    """Exit status, output and the play recap's counts of one ansible-playbook run."""

    returncode: int
    output: str

    def count(self, what: str) -> int:
        """Sum of ``what`` (changed, failed, ...) over the hosts of the play recap."""
        return sum(int(n) for n in re.findall(rf"\b{what}=(\d+)", self.output))


def playbook(*args: str, home: Path, timeout: float = 600) -> PlaybookRun:
    """``ansible-playbook -i inventories/localhost.yml site.yml ARGS`` in ansible/."""
    env = {**os.environ, "ANSIBLE_HOME": str(home), "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    env.pop("DOCKER_HOST", None)
    result = subprocess.run([str(BIN / "ansible-playbook"), "-i", "inventories/localhost.yml",
                             "site.yml", *args], cwd=ANSIBLE, env=env, capture_output=True,
                            text=True, timeout=timeout, check=False)
    return PlaybookRun(result.returncode, result.stdout + result.stderr)
