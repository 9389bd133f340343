"""An HTTP server on 127.0.0.1, in a thread of the test process, for the download tests:
it serves ``server.files`` (path -> bytes), honours ``Range: bytes=N-`` unless
``server.ignore_range``, can cut a body short (``server.cut_after``) and records every
request's path and Range header (``server.requests``)."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves server.files; honours `Range: bytes=N-` unless server.ignore_range; with
    server.cut_after=K announces the full length but sends K bytes and drops the connection."""

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_GET(self):
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start, status = 0, 200
        wanted = self.headers.get("Range")
        if wanted and not server.ignore_range:
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        sent = body[start:]
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(sent)))
        self.end_headers()
        if server.cut_after is None:
            self.wfile.write(sent)
            return
        self.wfile.write(sent[: server.cut_after])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a dropped connection is the point
        pass


@pytest.fixture
def http_server(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.files = {}
    httpd.ignore_range = False
    httpd.cut_after = None
    httpd.requests = []
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)
