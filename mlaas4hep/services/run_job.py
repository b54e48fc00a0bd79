"""Run one submitted job: ``python -m mlaas4hep.services.run_job JOB_FOLDER``.

Runs ``workflow.py`` on ``JOB_FOLDER/inputs`` with outputs in
``JOB_FOLDER/run`` and, whatever happens, writes ``JOB_FOLDER/result.json``
(exit status and end time) last, so the submit service knows the job ended
even if it was restarted meanwhile.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from ..cli import workflow_main

RESULT = "result.json"


def workflow_args(job: Path) -> list[str]:
    """The seed's command line on the job's inputs."""
    inputs = job / "inputs"
    return [f"--files={inputs / 'files.txt'}", f"--labels={inputs / 'labels.txt'}",
            f"--model={inputs / 'model.py'}", f"--params={inputs / 'params.json'}",
            f"--preproc={inputs / 'preproc.json'}", f"--out-dir={job / 'run'}"]


def main(argv: list[str] | None = None) -> int:
    """Run the job in the folder named by the one argument; return workflow.py's status."""
    job = Path((argv if argv is not None else sys.argv[1:])[0]).resolve()
    code = 1
    try:
        code = workflow_main(workflow_args(job))
    finally:
        tmp = job / f".{RESULT}.tmp"
        tmp.write_text(json.dumps({"exit_code": code, "finished": time.time()}))
        os.replace(tmp, job / RESULT)
    return code


if __name__ == "__main__":
    sys.exit(main())
