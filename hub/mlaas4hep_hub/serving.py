"""Run a service's tornado application until it is told to stop."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
from collections.abc import Callable

from tornado import web
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.netutil import bind_sockets

log = logging.getLogger("mlaas4hep_hub")

PR_SET_PDEATHSIG = 1


def serve(make_app: Callable[[], web.Application], port: int, *,
          max_body_size: int | None = None, processes: int = 1) -> None:
    """Listen on 127.0.0.1:``port`` until SIGINT (how the hub stops its services) or SIGTERM
    (``docker stop``, systemd) arrives; both handled here, so neither an inherited 'ignore'
    nor the default abrupt exit applies.

    With ``processes`` > 1, that many processes listen on the port (``SO_REUSEPORT``: the
    kernel spreads the connections evenly): this one and copies forked before any app is
    made (``make_app`` runs in each), which stop when this one stops. Each serves on its own
    core (one Python process uses one).
    """
    parent = os.getpid()
    for _ in range(processes - 1):
        if os.fork() == 0:
            _stop_with(parent)
            break
    sockets = bind_sockets(port, address="127.0.0.1", reuse_port=processes > 1)
    if os.getpid() == parent and processes > 1:
        log.info("serving on 127.0.0.1:%d with %d processes", port, processes)
    server = HTTPServer(make_app(), max_body_size=max_body_size)
    server.add_sockets(sockets)
    loop = IOLoop.current()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.asyncio_loop.add_signal_handler(signum, loop.stop)
    loop.start()


def _stop_with(parent: int) -> None:
    """Have the kernel send this (forked) process SIGTERM when ``parent`` ends (Linux)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent ended before the request took effect
        os._exit(0)
