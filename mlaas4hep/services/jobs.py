"""``workflow.py`` runs submitted as jobs, whose state lives on disk.

Each job is a folder ``ROOT/<user>/<id>/``: ``job.json`` (the record),
``inputs/`` (files.txt, labels.txt, model.py, params.json, preproc.json,
checked at submission with the CLI's own checks and messages), ``log.txt``,
``run/`` (the output folder) and ``result.json``, written by
:mod:`.run_job` when the run ends. The state is recomputed from those files
and the runner (is the process or container still there?), so it survives
a restart of the service. A runner starts the job as a local process
(:class:`LocalRunner`, dev mode) or a container with memory and CPU limits
(:class:`DockerRunner`); both are given argument lists, never a shell.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..backends.common import import_library
from ..config import parse_params, parse_preproc, read_files_and_labels
from ..errors import UserError
from ..model_loader import check_syntax
from ..tasks import task_for
from .run_job import RESULT
from .store import NotFound, check_name

MEMORY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([KMG])$")
UNITS = {"K": 2**10, "M": 2**20, "G": 2**30}
JOB_UID = 1000
"""The unprivileged user (jovyan) that job containers run as."""
FIELDS = ("name", "files", "labels", "model", "params", "preproc", "device", "memory", "cpus")


@dataclass
class Limits:
    """What a job may ask for."""

    max_memory: str = "4G"
    max_cpus: float = 2.0
    gpu: bool = False


def memory_bytes(text: str, where: str = "memory") -> int:
    """``'2G'`` -> bytes."""
    match = MEMORY.match(str(text))
    if not match:
        raise UserError(f"{where}: {text!r} is not a size such as '512M' or '2G'")
    return int(float(match.group(1)) * UNITS[match.group(2)])


@dataclass
class JobRequest:
    """A checked ``POST /submit`` body."""

    name: str
    device: str
    memory: str
    cpus: float


def write_inputs(body: Any, folder: Path, limits: Limits) -> JobRequest:
    """Check a submit body and write its inputs into ``folder``; messages are the CLI's,
    naming files.txt, labels.txt, model.py, params.json and preproc.json."""
    if not isinstance(body, dict):
        raise UserError("the request body must be a JSON object with " + ", ".join(FIELDS))
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise UserError(f"unknown field '{unknown[0]}'; the fields are {', '.join(FIELDS)}")
    for key in ("name", "files", "labels", "model"):
        if key not in body:
            raise UserError(f"missing field '{key}'")
    name = check_name(body["name"], "job name")
    files, labels = body["files"], body["labels"]
    if not isinstance(files, list) or not all(isinstance(f, str) and "\n" not in f
                                               for f in files):
        raise UserError("files: a list of ROOT file names or URLs")
    if not isinstance(labels, list) or not all(isinstance(x, (int, str)) for x in labels):
        raise UserError("labels: a list with one label (0, 1, ...) per file")
    if not isinstance(body["model"], str):
        raise UserError("model: the text of a model.py")
    folder.mkdir(parents=True)
    try:
        (folder / "files.txt").write_text("".join(f"{f}\n" for f in files))
        (folder / "labels.txt").write_text("".join(f"{x}\n" for x in labels))
        pairs = read_files_and_labels(folder / "files.txt", folder / "labels.txt")
    except UserError as exc:
        raise UserError(str(exc).replace(f"{folder}/", "")) from None
    params = parse_params(body.get("params", {}), "params.json")
    task_for(pairs, "labels.txt", params.target)
    parse_preproc(body.get("preproc", {}), "preproc.json")
    check_syntax(body["model"], "model.py")
    (folder / "model.py").write_text(body["model"])
    (folder / "params.json").write_text(json.dumps(body.get("params", {}), indent=1))
    (folder / "preproc.json").write_text(json.dumps(body.get("preproc", {}), indent=1))
    return JobRequest(name, *_resources(body, limits))


def _resources(body: dict[str, Any], limits: Limits) -> tuple[str, str, float]:
    device = body.get("device", "cpu")
    if device not in ("cpu", "gpu"):
        raise UserError(f"device: 'cpu' or 'gpu', got {device!r}")
    if device == "gpu" and not limits.gpu:
        raise UserError("device 'gpu': this hub has no GPU for jobs; use 'cpu'")
    memory = str(body.get("memory", limits.max_memory))
    if memory_bytes(memory) > memory_bytes(limits.max_memory):
        raise UserError(f"memory: {memory} is more than the limit of {limits.max_memory}")
    cpus = body.get("cpus", 1)
    if not isinstance(cpus, (int, float)) or isinstance(cpus, bool) or not (
            0 < cpus <= limits.max_cpus):
        raise UserError(f"cpus: a number above 0 and at most {limits.max_cpus:g}, got {cpus!r}")
    return device, memory, float(cpus)


def _proc_start(pid: int) -> str | None:
    """The start time of process ``pid`` (guards against a reused pid), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


class LocalRunner:
    """Jobs as processes of the service's own user (dev mode; limits are recorded, not
    enforced)."""

    kind = "local"

    def __init__(self, python: str = sys.executable):
        self.python = python
        self._children: dict[int, subprocess.Popen] = {}

    def start(self, job: Path, record: dict[str, Any], cwd: Path) -> dict[str, Any]:
        """Start ``run_job`` for ``job``; return what identifies the process."""
        with open(job / "log.txt", "ab") as log:
            process = subprocess.Popen(
                [self.python, "-m", "mlaas4hep.services.run_job", str(job)], cwd=cwd,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        self._children[process.pid] = process
        return {"pid": process.pid, "start": _proc_start(process.pid)}

    def alive(self, handle: dict[str, Any]) -> bool:
        """True while the job's process runs."""
        child = self._children.get(handle["pid"])
        if child is not None and child.poll() is not None:
            del self._children[handle["pid"]]
        start = _proc_start(handle["pid"])
        return start is not None and start == handle.get("start")

    def stop(self, handle: dict[str, Any]) -> None:
        """Stop the job's process group."""
        if self.alive(handle):
            os.killpg(handle["pid"], signal.SIGTERM)


class DockerRunner:
    """Jobs as containers of the user image with the job's memory and CPU limits (and a GPU
    when asked), as the unprivileged user of the image, on the host network. Talks to the
    Docker engine through its API (``$DOCKER_HOST`` or the local socket; the Docker SDK
    DockerSpawner uses), so the hub image needs no docker command."""

    kind = "docker"

    def __init__(self, image: str, *, home_volume: str = "", client: Any = None):
        self.image = image
        self.home_volume = home_volume
        self._client = client

    @property
    def client(self) -> Any:
        """The Docker SDK client (from the environment on first use)."""
        if self._client is None:
            self._client = _docker().from_env()
        return self._client

    def options(self, job: Path, record: dict[str, Any]) -> dict[str, Any]:
        """The ``containers.run`` keyword arguments of a job."""
        volumes = {str(job): {"bind": "/job", "mode": "rw"}}
        options: dict[str, Any] = {
            "name": f"mlaas4hep-job-{record['id']}", "detach": True, "network_mode": "host",
            "user": f"{JOB_UID}:{JOB_UID}", "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"], "mem_limit": record["memory"],
            "nano_cpus": round(record["cpus"] * 1e9), "volumes": volumes,
            "environment": {"TF_CPP_MIN_LOG_LEVEL": "3"}}
        if record["device"] == "gpu":
            options["device_requests"] = [_docker().types.DeviceRequest(
                count=1, capabilities=[["gpu"]])]
        if self.home_volume:
            volume = self.home_volume.format(username=record["user"])
            volumes[volume] = {"bind": "/home/jovyan", "mode": "rw"}
            options["working_dir"] = "/home/jovyan"
        return options

    def start(self, job: Path, record: dict[str, Any], cwd: Path) -> dict[str, Any]:
        """Run the job's container; its output goes to log.txt via :meth:`log` later."""
        if os.geteuid() == 0:  # the container's user writes run/ and result.json in /job
            os.chown(job, JOB_UID, JOB_UID)
        else:
            job.chmod(0o777)
        options = self.options(job, record)
        try:
            self.client.containers.run(
                self.image, ["python3", "-m", "mlaas4hep.services.run_job", "/job"], **options)
        except _docker().errors.DockerException as exc:
            raise UserError(f"the job's container did not start: {exc}") from None
        return {"container": options["name"]}

    def _container(self, handle: dict[str, Any]) -> Any:
        """The job's container, or None once it is gone."""
        try:
            return self.client.containers.get(handle["container"])
        except _docker().errors.NotFound:
            return None

    def alive(self, handle: dict[str, Any]) -> bool:
        """True while the container runs (its log is copied to log.txt each check)."""
        container = self._container(handle)
        return container is not None and container.status == "running"

    def log(self, handle: dict[str, Any]) -> str:
        """The container's output (stdout and stderr)."""
        container = self._container(handle)
        return "" if container is None else container.logs().decode(errors="replace")

    def stop(self, handle: dict[str, Any]) -> None:
        """Remove the container."""
        container = self._container(handle)
        if container is not None:
            container.remove(force=True)


def _docker() -> Any:
    """The Docker SDK, or how to install it."""
    return import_library("docker", "the submit service's Docker runner needs the Docker SDK "
                                    "for Python: pip install docker")


class JobStore:
    """Every user's jobs under ``root`` (see the module docstring)."""

    def __init__(self, root: str | Path, runner: Any, *, limits: Limits | None = None,
                 workdir: Callable[[str], Path | None] = lambda user: None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.runner = runner
        self.limits = limits or Limits()
        self.workdir = workdir

    def _folder(self, user: str, job_id: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{12}", job_id or ""):
            raise NotFound(f"no job {job_id!r}")
        folder = self.root / check_name(user, "user") / job_id
        if not (folder / "job.json").is_file():
            raise NotFound(f"no job {job_id!r}")
        return folder

    def submit(self, user: str, body: Any) -> dict[str, Any]:
        """Check the request, write its inputs and start the job; return its record."""
        job_id = uuid.uuid4().hex[:12]
        folder = self.root / check_name(user, "user") / job_id
        try:
            request = write_inputs(body, folder / "inputs", self.limits)
        except UserError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        record = {"id": job_id, "user": user, **asdict(request), "state": "running",
                  "runner": self.runner.kind, "created": time.time(), "finished": None,
                  "exit_code": None, "error": None}
        cwd = self.workdir(user)
        record["handle"] = self.runner.start(folder, record, cwd if cwd and cwd.is_dir()
                                             else folder)
        self._save(folder, record)
        return _public(record)

    def _save(self, folder: Path, record: dict[str, Any]) -> None:
        tmp = folder / ".job.json.tmp"
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, folder / "job.json")

    def _record(self, folder: Path) -> dict[str, Any]:
        record = json.loads((folder / "job.json").read_text())
        if record["state"] != "running":
            return record
        result = folder / RESULT
        if not result.is_file() and self.runner.alive(record["handle"]):
            return record
        if hasattr(self.runner, "log"):
            (folder / "log.txt").write_text(self.runner.log(record["handle"]))
        if result.is_file():
            done = json.loads(result.read_text())
            record.update(exit_code=done["exit_code"], finished=done["finished"],
                          state="finished" if done["exit_code"] == 0 else "failed")
            if done["exit_code"] != 0:
                record["error"] = _error_line(folder / "log.txt")
        else:
            record.update(state="failed", finished=time.time(),
                          error="the job ended without a result (stopped or out of memory)")
        self._save(folder, record)
        return record

    def get(self, user: str, job_id: str) -> dict[str, Any]:
        """A job's record, its state brought up to date."""
        return _public(self._record(self._folder(user, job_id)))

    def list(self, user: str) -> list[dict[str, Any]]:
        """The user's jobs, oldest first."""
        base = self.root / user
        folders = [f for f in base.iterdir() if (f / "job.json").is_file()] if base.is_dir() \
            else []
        return sorted((_public(self._record(f)) for f in folders), key=lambda r: r["created"])

    def log(self, user: str, job_id: str) -> str:
        """The job's output so far."""
        folder = self._folder(user, job_id)
        record = self._record(folder)
        if record["state"] == "running" and hasattr(self.runner, "log"):
            return self.runner.log(record["handle"])
        path = folder / "log.txt"
        return path.read_text(errors="replace") if path.is_file() else ""

    def results(self, user: str, job_id: str) -> Path:
        """The output folder of a finished job."""
        folder = self._folder(user, job_id)
        record = self._record(folder)
        if record["state"] != "finished":
            raise UserError(f"job {job_id} is {record['state']}; results exist once it has "
                            "finished")
        return folder / "run"

    def delete(self, user: str, job_id: str) -> None:
        """Stop the job if it runs and remove everything it wrote."""
        folder = self._folder(user, job_id)
        record = self._record(folder)
        if record["state"] == "running" or record["runner"] == "docker":
            self.runner.stop(record["handle"])
        shutil.rmtree(folder)


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "handle"}


def _error_line(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
    errors = [line for line in lines if line.startswith("error: ")]
    if errors:
        return errors[-1][len("error: "):]
    return lines[-1] if lines else "the job failed without output"
