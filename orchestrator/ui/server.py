"""Serving the page with uvicorn: in the foreground (``segue ui``) or on a thread
(``segue run --ui``, tests).

The socket is bound here first, so a port in use is an ``OSError`` the caller
turns into a message, not uvicorn's exit.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0: any free port).

    Raises:
        OSError: The address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def address(host: str, sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{sock.getsockname()[1]}"


def _server(app: Starlette) -> uvicorn.Server:
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, timeout_graceful_shutdown=1, lifespan="off"
    )
    return uvicorn.Server(config)


def serve(app: Starlette, sock: socket.socket) -> None:
    """Serve until interrupted (Ctrl-C ends it cleanly)."""
    _server(app).run(sockets=[sock])


class UiServer:
    """The page served on a thread of its own until :meth:`close`."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind and start serving.

        Raises:
            OSError: The address cannot be bound.
            RuntimeError: The server did not start within 10 seconds.
        """
        self._sock = bind(host, port)
        self.url = address(host, self._sock)
        self._server = _server(app)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="segue-ui", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the operations page did not start")
            time.sleep(0.02)

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._sock.close()
