"""The specs pass and prepare on a real Dask cluster (a LocalCluster of worker processes on
loopback) give exactly what the single process gives."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlaas4hep.errors import UserError
from mlaas4hep.workflow import prepare

from .browser import free_port
from .conftest import edit_json

BIN = Path(sys.executable).parent


def test_prepare_on_a_local_cluster_equals_the_single_process_run(workdir: Path) -> None:
    """Cuts, a jagged new branch and several chunks (the seed's preproc.json)."""
    edit_json(workdir / "params.json", chunk_size=700, cache_mb=0)
    common = [f"--files={workdir / 'files.txt'}", f"--labels={workdir / 'labels.txt'}",
              f"--params={workdir / 'params.json'}", f"--preproc={workdir / 'preproc.json'}"]
    single = prepare(workdir / "files.txt", workdir / "labels.txt", workdir / "params.json",
                     workdir / "preproc.json", output=workdir / "single.npz")
    done = subprocess.run([str(BIN / "mlaas4hep"), "prepare", *common, "--dask=local",
                           f"--output={workdir / 'dask.npz'}"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    used = re.search(r"dask: (\d+) chunks in (\d+) tasks on 2 workers", done.stdout)
    assert used and int(used[1]) > 4 and int(used[2]) > 1, done.stdout[-2000:]
    assert single.specs.events > 500
    a, b = np.load(workdir / "single.npz"), np.load(workdir / "dask.npz")
    assert set(a.files) == set(b.files)
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_specs_on_a_local_cluster_are_identical(workdir: Path) -> None:
    from mlaas4hep.config import load_params, load_preproc, read_files_and_labels
    from mlaas4hep.dataset import Dataset
    from mlaas4hep.distributed import dask_client

    edit_json(workdir / "params.json", chunk_size=900)
    pairs = read_files_and_labels(workdir / "files.txt", workdir / "labels.txt")
    params, preproc = load_params(workdir / "params.json"), load_preproc(workdir / "preproc.json")
    with Dataset.open(pairs, params, preproc) as data:
        here = data.specs()
        with dask_client("local") as client:
            there = data.specs(client=client)
    assert json.dumps(here.to_dict()) == json.dumps(there.to_dict())


def test_an_unreachable_scheduler_is_named(workdir: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(UserError, match=r"params 'dask': cannot reach the Dask scheduler at "
                                        rf"'{address}'"):
        prepare(workdir / "files.txt", workdir / "labels.txt", workdir / "params.json",
                dask=address)
