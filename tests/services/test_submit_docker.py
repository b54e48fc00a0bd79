"""The submit service's Docker runner on a real engine (the tests' own dockerd, the built
user image): a job submitted with an IAM token runs workflow.py in a container of the
user image with the asked memory and CPU limits, on the user's home volume; its log and
results come back through the service, and DELETE removes the container."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from tests.docker.dockerd import BuiltImages, DockerDaemon

from ..hub.conftest import hub_factory
from .test_publish_hub import iam_token
from .test_services_hub import MODELS, call, wait_for_job

# the first Docker test of a session also waits for the image builds (several minutes)
pytestmark = pytest.mark.timeout(2400)


def sample_job(name: str, *, chunk_size: int, memory: str, cpus: float) -> dict:
    """A job body: the example logistic regression on samples/ of the user's home."""
    return {"name": name, "labels": [1, 0],
            "files": ["samples/signal.root", "samples/background.root"],
            "model": (MODELS / "sklearn_logistic_regression.py").read_text(),
            "params": {"chunk_size": chunk_size, "epochs": 1, "verbose": 0,
                       "identifier": ["runNo", "evtNo", "lumi"]},
            "device": "cpu", "memory": memory, "cpus": cpus}


def test_a_job_runs_in_a_user_image_container_with_its_limits(
        tmp_path_factory: pytest.TempPathFactory, dockerd: DockerDaemon,
        built_images: BuiltImages) -> None:
    # alice's home volume holds her samples, as her server would have made them
    dockerd.run(built_images.singleuser, "mlaas4hep", "make-sample", "--out-dir", "samples",
                "--events", "3000", options=("-v", "mlaas4hep-home-alice:/home/jovyan", "-w",
                                             "/home/jovyan", "--user", "1000:1000"))
    with hub_factory(tmp_path_factory) as make:
        hub = make(docker_host=dockerd.host)
        alice, bob = iam_token(hub, "alice"), iam_token(hub, "bob")
        body = sample_job("tth-docker", chunk_size=3000, memory="1536M", cpus=1.5)
        submitted = call(hub, "POST", "submit", "submit", alice, json=body)
        assert submitted.status_code == 201, submitted.text
        job = submitted.json()["id"]
        assert submitted.json()["runner"] == "docker"

        container = f"mlaas4hep-job-{job}"
        info = json.loads(dockerd.docker("inspect", container).stdout)[0]
        assert info["Config"]["Image"] == built_images.singleuser
        host = info["HostConfig"]
        assert host["Memory"] == 1536 * 2**20 and host["NanoCpus"] == 1_500_000_000
        assert host["NetworkMode"] == "host" and host["CapDrop"] == ["ALL"]
        assert not host["Privileged"] and "no-new-privileges" in host["SecurityOpt"]
        assert info["Config"]["User"] == "1000:1000"
        mounts = {m["Destination"]: m for m in info["Mounts"]}
        assert mounts["/home/jovyan"]["Name"] == "mlaas4hep-home-alice"
        assert info["Config"]["WorkingDir"] == "/home/jovyan"

        record = wait_for_job(hub, alice, job)
        assert record["state"] == "finished" and record["exit_code"] == 0, (
            record, call(hub, "GET", "submit", f"jobs/{job}/log", alice).text[-3000:])
        assert "test split:" in call(hub, "GET", "submit", f"jobs/{job}/log", alice).text
        results = call(hub, "GET", "submit", f"jobs/{job}/results", alice)
        assert results.status_code == 200
        with tarfile.open(fileobj=io.BytesIO(results.content)) as tar:
            metrics = json.load(tar.extractfile("tth-docker/metrics.json"))
            assert "tth-docker/model.pkl" in tar.getnames()
        assert metrics["test"]["auc"] > 0.5

        assert call(hub, "GET", "submit", f"jobs/{job}", bob).status_code == 404
        assert call(hub, "DELETE", "submit", f"jobs/{job}", alice).status_code == 200
        left = dockerd.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
        assert container not in left
