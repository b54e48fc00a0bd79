"""The seed workflow reading through a real XRootD server on loopback gives the
same specs and metrics as reading the local files."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mlaas4hep.cli import main
from mlaas4hep.workflow import run_workflow

from .conftest import edit_json
from .servers.xrootd import XRootDServer, xrootd_server  # noqa: F401  (fixture)


def strip_paths(specs: dict) -> dict:
    for f in specs["files"]:
        f.pop("path")
    return specs


def test_workflow_over_root_protocol_matches_local(
        workdir: Path, samples: Path, tmp_path: Path,
        xrootd_server: Callable[[Path], XRootDServer]) -> None:  # noqa: F811
    export = tmp_path / "export"
    store = export / "store" / "user" / "mlaas4hep"
    store.mkdir(parents=True)
    for name in ("signal.root", "background.root"):
        shutil.copy(samples / name, store / name)
    server = xrootd_server(export)
    edit_json(workdir / "params.json", epochs=1, chunk_size=2000)
    args = [workdir / "labels.txt", workdir / "model.py", workdir / "params.json",
            workdir / "preproc.json"]
    local = run_workflow(workdir / "files.txt", *args, out_dir=workdir / "local")

    # the seed's way: /store/ paths with a redirector in params.json
    (workdir / "store.txt").write_text("/store/user/mlaas4hep/signal.root\n"
                                       "/store/user/mlaas4hep/background.root\n")
    edit_json(workdir / "params.json", redirector=server.url)
    remote = run_workflow(workdir / "store.txt", *args, out_dir=workdir / "remote")

    specs = {where: json.loads((out / "global-specs.json").read_text())
             for where, out in (("local", local), ("remote", remote))}
    assert [f["path"] for f in specs["remote"]["files"]] == [
        server.url + "/store/user/mlaas4hep/signal.root",
        server.url + "/store/user/mlaas4hep/background.root"]
    assert strip_paths(specs["local"]) == strip_paths(specs["remote"])
    metrics = {where: json.loads((out / "metrics.json").read_text())
               for where, out in (("local", local), ("remote", remote))}
    assert metrics["local"]["test"] == metrics["remote"]["test"]
    assert metrics["local"]["history"] == metrics["remote"]["history"]
    assert metrics["local"]["events"] == metrics["remote"]["events"]


def test_missing_file_on_xrootd_server_is_one_clear_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        xrootd_server: Callable[[Path], XRootDServer]) -> None:  # noqa: F811
    (tmp_path / "export").mkdir()
    server = xrootd_server(tmp_path / "export")
    url = server.url_for("/store/nope.root")
    (tmp_path / "files.txt").write_text(url + "\n")
    (tmp_path / "labels.txt").write_text("1\n")
    rc = main(["prepare", f"--files={tmp_path / 'files.txt'}",
               f"--labels={tmp_path / 'labels.txt'}"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {url}: ")
