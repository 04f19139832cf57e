"""SandboxServer: serve a FakeFlickr on a threaded werkzeug server in a daemon thread."""

from __future__ import annotations

import threading
from types import TracebackType
from urllib.parse import urlsplit

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import FakeFlickr


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class _PathLogHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Method and path only: query strings carry tokens and signatures.
        path = urlsplit(getattr(self, "path", "")).path
        self.log("info", '"%s %s" %s', getattr(self, "command", "-"), path, code)


class SandboxServer:
    """`SandboxServer(app, port=0).start()` -> `.url`, `.port`, `.stop()`; also a context manager."""

    def __init__(
        self, app: FakeFlickr, host: str = "127.0.0.1", port: int = 0, *, quiet: bool = True
    ) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.quiet = quiet
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None  # kept after stop(), so logs can still name it

    def start(self) -> SandboxServer:
        handler = _QuietHandler if self.quiet else _PathLogHandler
        try:
            self._server = make_server(
                self.host, self.requested_port, self.app, threaded=True, request_handler=handler
            )
        except SystemExit:
            # werkzeug prints why (e.g. the port is taken) and exits; a library must not.
            raise OSError(f"cannot listen on {self.host}:{self.requested_port}") from None
        self._port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            # A short poll interval keeps stop() quick in tests that start many servers.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-flickr:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the sandbox server is not started")
        return self._port

    @property
    def url(self) -> str:
        # A server bound to every interface is still reached through loopback here.
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host  # noqa: S104
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    def __enter__(self) -> SandboxServer:
        return self.start() if self._server is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
