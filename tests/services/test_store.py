"""Safe unpacking of uploads, model namespaces and a cache that never serves a deleted or
replaced model; submit bodies checked with the CLI's messages."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from mlaas4hep.errors import UserError
from mlaas4hep.services.archive import safe_extract
from mlaas4hep.services.bundle import ModelBundle
from mlaas4hep.services.jobs import Limits, write_inputs
from mlaas4hep.services.store import Forbidden, ModelStore, NotFound


def archive(*members: tuple[str, bytes | None, bytes]) -> bytes:
    """A .tar.gz of (name, type, data) entries: type tarfile.REGTYPE, SYMTYPE, ..."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.linkname = data.decode()
                tar.addfile(info)
    return out.getvalue()


@pytest.mark.parametrize(("members", "message"), [
    ([("run/../../evil.py", tarfile.REGTYPE, b"x")], "'..' in a path is not allowed"),
    ([("/etc/cron.d/evil", tarfile.REGTYPE, b"x")], "absolute paths are not allowed"),
    ([("run/model.onnx", tarfile.SYMTYPE, b"/etc/passwd")], "links are not allowed"),
    ([("run/model.onnx", tarfile.LNKTYPE, b"/etc/passwd")], "links are not allowed"),
    ([("run/dev", tarfile.CHRTYPE, b"")], "only files and folders are allowed"),
    ([("run/big", tarfile.REGTYPE, b"\0" * 5000)], "more than the limit of 4096 bytes"),
    ([("run/a", tarfile.REGTYPE, b"\0" * 3000), ("run/b", tarfile.REGTYPE, b"\0" * 3000)],
     "unpacks to more than the limit of 4096 bytes"),
])
def test_malicious_tarballs_are_refused_and_leave_nothing(tmp_path: Path, members,
                                                          message: str) -> None:
    with pytest.raises(UserError, match=message):
        safe_extract(archive(*members), tmp_path / "out", max_bytes=4096)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path.parent / "evil.py").exists()


def test_not_a_tarball_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"not a readable tar\.gz archive"):
        safe_extract(b"PK\x03\x04 a zip file", tmp_path / "out", max_bytes=4096)


def test_a_single_top_folder_is_unwrapped(tmp_path: Path) -> None:
    data = archive(("run/a.json", tarfile.REGTYPE, b"{}"), ("run/sub/b", tarfile.REGTYPE, b"1"))
    out = safe_extract(data, tmp_path / "out", max_bytes=4096)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["a.json", "sub", "sub/b"]


def test_replaced_or_deleted_models_are_never_served_from_the_cache(
        tmp_path: Path, bundle_tgz: bytes) -> None:
    store = ModelStore(tmp_path / "models", ModelBundle)
    first = store.publish("alice", "tth", bundle_tgz)
    bundle = store.get("alice", "tth")
    assert store.get("alice", "tth") is bundle  # cached
    second = store.publish("alice", "tth", bundle_tgz)
    assert second["id"] != first["id"]
    assert store.get("alice", "tth") is not bundle
    # another process replaces the model behind this store's back: still not served stale
    other = ModelStore(tmp_path / "models", ModelBundle)
    other.publish("alice", "tth", bundle_tgz)
    assert store.get("alice", "tth") is not other.get("alice", "tth")
    other.delete("alice", "tth")
    with pytest.raises(NotFound):
        store.get("alice", "tth")
    assert [p.name for p in (tmp_path / "models" / "alice").iterdir()] == []


def test_namespaces_keep_users_apart_and_shared_models_belong_to_their_publisher(
        tmp_path: Path, bundle_tgz: bytes) -> None:
    store = ModelStore(tmp_path / "models", ModelBundle)
    store.publish("alice", "mine", bundle_tgz)
    store.publish("alice", "shared/tth", bundle_tgz)
    with pytest.raises(NotFound):
        store.get("bob", "mine")
    with pytest.raises(NotFound):
        store.get("bob", "alice/mine")
    assert store.get("bob", "shared/tth") is not None
    assert [m["model"] for m in store.list("bob")] == ["shared/tth"]
    with pytest.raises(Forbidden, match="published by alice"):
        store.delete("bob", "shared/tth")
    with pytest.raises(Forbidden):
        store.publish("bob", "shared/tth", bundle_tgz)
    with pytest.raises(UserError, match="use letters, digits"):
        store.publish("alice", "a b", bundle_tgz)
    with pytest.raises(NotFound):
        store.publish("alice", "../x", bundle_tgz)
    store.delete("alice", "shared/tth")
    assert store.list("bob") == []


def test_a_bundle_that_does_not_load_is_not_published(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models", ModelBundle)
    with pytest.raises(UserError, match=r"metrics\.json: missing"):
        store.publish("alice", "broken", archive(("run/model.onnx", tarfile.REGTYPE, b"x")))
    assert store.list("alice") == []
    assert list((tmp_path / "models" / "alice").iterdir()) == []


BODY = {"name": "tth", "files": ["sig.root", "bkg.root"], "labels": [1, 0],
        "model": "def model():\n    pass\n", "params": {"epochs": 1}, "preproc": {}}


@pytest.mark.parametrize(("change", "message"), [
    ({"params": {"epoch": 1}}, "params.json: unknown key 'epoch' (did you mean 'epochs'?)"),
    ({"labels": [1]}, "files.txt lists 2 file(s) but labels.txt lists 1 label(s)"),
    ({"labels": [1, "x"]}, "labels.txt: label #2 must be an integer"),
    ({"model": "def model(:\n"}, "model.py:1: syntax error"),
    ({"preproc": {"new_branch": {"x": {"def": "__import__('os')"}}}}, "preproc.json: "
     "new_branch.x.def"),
    ({"memory": "64G"}, "memory: 64G is more than the limit of 4G"),
    ({"device": "gpu"}, "device 'gpu': this hub has no GPU for jobs"),
    ({"cpus": 0}, "cpus: a number above 0 and at most 2"),
    ({"name": "a b"}, "job name 'a b': use letters"),
    ({"shell": "rm -rf /"}, "unknown field 'shell'"),
])
def test_submit_bodies_are_checked_with_the_clis_messages(tmp_path: Path, change: dict,
                                                          message: str) -> None:
    with pytest.raises(UserError) as caught:
        write_inputs({**BODY, **change}, tmp_path / "inputs", Limits())
    assert str(caught.value).startswith(message), str(caught.value)
    assert str(tmp_path) not in str(caught.value)


def test_a_good_submit_body_writes_the_seeds_input_files(tmp_path: Path) -> None:
    request = write_inputs(BODY, tmp_path / "inputs", Limits())
    assert (request.name, request.device, request.cpus) == ("tth", "cpu", 1.0)
    assert (tmp_path / "inputs" / "files.txt").read_text() == "sig.root\nbkg.root\n"
    assert json.loads((tmp_path / "inputs" / "params.json").read_text()) == {"epochs": 1}
