"""Reading over HTTP with range requests (the https:// code path), from a real
loopback HTTP server, gives the same specs and arrays as the local files."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from mlaas4hep.workflow import prepare


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with single and multiple byte ranges, as ROOT readers need."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        header = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not header or not path.is_file():
            return super().do_GET()
        data = path.read_bytes()
        ranges = [(int(a), int(b) if b else len(data) - 1)
                  for a, b in re.findall(r"(\d+)-(\d*)", header)]
        if len(ranges) == 1:
            a, b = ranges[0]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {a}-{b}/{len(data)}")
            self.send_header("Content-Length", str(b - a + 1))
            self.end_headers()
            self.wfile.write(data[a:b + 1])
            return
        boundary = "mlaas4hepboundary"
        body = b""
        for a, b in ranges:
            body += (f"--{boundary}\r\nContent-Type: application/octet-stream\r\n"
                     f"Content-Range: bytes {a}-{b}/{len(data)}\r\n\r\n").encode()
            body += data[a:b + 1] + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        self.send_response(206)
        self.send_header("Content-Type", f"multipart/byteranges; boundary={boundary}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def http_server(samples: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler,
                                                           directory=str(samples)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_reads_match_local_reads(http_server: str, samples: Path, tmp_path: Path) -> None:
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"chunk_size": 1500, "identifier": "runNo,evtNo,lumi"}))
    results = {}
    for where, prefix in (("local", str(samples)), ("http", http_server)):
        files = tmp_path / f"{where}.txt"
        files.write_text(f"{prefix}/signal.root\n{prefix}/background.root\n")
        (tmp_path / "labels.txt").write_text("1\n0\n")
        results[where] = prepare(files, tmp_path / "labels.txt", params,
                                 output=tmp_path / f"{where}.npz")
    local, remote = (results[w].specs.to_dict() for w in ("local", "http"))
    for specs in (local, remote):
        for f in specs["files"]:
            f.pop("path")
    assert local == remote
    a, b = np.load(tmp_path / "local.npz"), np.load(tmp_path / "http.npz")
    for key in ("X", "mask", "y", "split"):
        np.testing.assert_array_equal(a[key], b[key])


def test_missing_remote_file_is_one_clear_error(http_server: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from mlaas4hep.cli import main

    (tmp_path / "files.txt").write_text(f"{http_server}/nope.root\n")
    (tmp_path / "labels.txt").write_text("1\n")
    rc = main(["prepare", f"--files={tmp_path / 'files.txt'}",
               f"--labels={tmp_path / 'labels.txt'}"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert err == f"error: {http_server}/nope.root: file not found on the server\n"
