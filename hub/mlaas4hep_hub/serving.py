"""Run a service's tornado application until it is told to stop."""

from __future__ import annotations

import signal

from tornado import web
from tornado.ioloop import IOLoop


def serve(app: web.Application, port: int, max_body_size: int | None = None) -> None:
    """Listen on 127.0.0.1:``port`` until SIGINT (how the hub stops its services) or SIGTERM
    (``docker stop``, systemd) arrives; both handled here, so neither an inherited 'ignore'
    nor the default abrupt exit applies."""
    app.listen(port, address="127.0.0.1", max_body_size=max_body_size)
    loop = IOLoop.current()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.asyncio_loop.add_signal_handler(signum, loop.stop)
    loop.start()
