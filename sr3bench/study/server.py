"""``sr3bench study-serve``: the study folder served locally (standard library only), each
answer checked against the plan and stored in SQLite when it is given.

    GET  /start                    redirect to the page of the first planned rater not started
    GET  /start?rater=ID           redirect to that rater's page (so is GET /)
    GET  /index.html?rater=ID      the page (any file of the study folder; no listing)
    GET  /api/state?rater=ID       {"rater", "next_trial", "trials"}
    POST /api/answer               one answer (JSON) -> {"stored": bool, "next_trial": n}; a re-sent
                                   answer is not stored twice; 400 for an answer that disagrees with
                                   the plan, 409 for one ahead of the rater's next trial

The rater's state lives in the database only, so a page reload or a server restart resumes
at the rater's next trial.
"""

from __future__ import annotations

import argparse
import json
import logging
import mimetypes
import signal
import socket
import sqlite3
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from sr3bench.study.importing import AnswerError, PlannedTrials
from sr3bench.study.store import StoreError, check_origin, checkpoint, next_trial, open_store, record

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
PAGE = "index.html"
# The page and its files come from this server only (the study folder is self-contained).
CONTENT_SECURITY_POLICY = "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'"


class StudyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, site: Path, answers: Path):
        self.site = Path(site).resolve()
        self.answers = Path(answers).resolve()
        self.planned = PlannedTrials.from_site(self.site)
        self.connection = open_store(self.answers)
        try:
            check_origin(self.connection, "served")  # refuse at once to add human answers to simulated ones
        except StoreError:
            self.connection.close()
            raise
        self.lock = threading.Lock()  # one connection, used by one request at a time
        self.handed_out: set[str] = set()  # raters whose link /start gave out since this server started
        try:
            super().__init__(address, StudyHandler)
        except OSError:
            self.connection.close()
            raise

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"

    def next_trial(self, rater: str) -> int:
        with self.lock:
            return next_trial(self.connection, rater)

    def store(self, answer: dict) -> tuple[bool, int]:
        with self.lock:
            stored = record(self.connection, answer)
            return stored, next_trial(self.connection, answer["rater"])

    def rater_to_start(self) -> str | None:
        """The first planned rater who has no answer and whose link was not handed out yet."""
        with self.lock:
            for rater in self.planned.raters:
                if rater not in self.handed_out and next_trial(self.connection, rater) == 0:
                    self.handed_out.add(rater)
                    return rater
        return None

    def server_close(self) -> None:
        super().server_close()
        with self.lock:
            if self.connection is not None:
                self.connection.close()
                self.connection = None
                checkpoint(self.answers)


class StudyHandler(BaseHTTPRequestHandler):
    server: StudyServer
    server_version = "sr3bench-study"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self):  # noqa: N802 - the base class's name
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        if url.path in ("/", "/start"):
            self._start(query.get("rater"))
        elif url.path == "/api/state":
            rater = self._known_rater(query.get("rater"))
            if rater:
                trials = self.server.planned.count(rater)
                self._json(
                    HTTPStatus.OK, {"rater": rater, "next_trial": self.server.next_trial(rater), "trials": trials}
                )
        elif url.path.startswith("/api/"):
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no API {url.path}"})
        else:
            self._file(url.path)

    def do_POST(self):  # noqa: N802 - the base class's name
        if urlsplit(self.path).path != "/api/answer":
            self._json(HTTPStatus.NOT_FOUND, {"error": f"nothing to post to at {self.path}"})
            return
        length = self.headers.get("Content-Length", "")
        length = int(length) if length.isdigit() else 0
        if not 0 < length <= MAX_BODY:
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"an answer is a JSON object of at most {MAX_BODY} bytes"})
            return
        try:
            row = json.loads(self.rfile.read(length))
            if not isinstance(row, dict):
                raise AnswerError("an answer is a JSON object")
            row.pop("origin", None)
            if not row.get("user_agent"):
                row["user_agent"] = self.headers.get("User-Agent", "")
            answer = self.server.planned.check(row)
        except ValueError as error:  # an AnswerError, or json.JSONDecodeError
            log.warning("answer refused: %s", error)
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"answer refused: {error}"})
            return
        expected = self.server.next_trial(answer["rater"])
        if answer["trial"] > expected:
            message = f"rater {answer['rater']}'s trial {answer['trial']} comes after trial {expected}, not answered"
            self._json(HTTPStatus.CONFLICT, {"error": message, "next_trial": expected})
            return
        try:
            stored, following = self.server.store({**answer, "origin": "served"})
        except (StoreError, sqlite3.Error) as error:  # the page shows it waits, and sends the answer again
            log.error("answer of rater %s, trial %d not stored: %s", answer["rater"], answer["trial"], error)
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"not stored: {error}"})
            return
        self._json(HTTPStatus.OK, {"stored": stored, "next_trial": following})

    def _start(self, rater: str | None):
        if rater is None:
            rater = self.server.rater_to_start()
            if rater is None:
                self._text(
                    HTTPStatus.CONFLICT, "Every rater of this study has started: there is no link left to hand out."
                )
                return
        elif self._known_rater(rater) is None:
            return
        self.send_response(HTTPStatus.SEE_OTHER)
        self.send_header("Location", f"/{PAGE}?rater={quote(rater)}")
        self.send_header("Content-Length", "0")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()

    def _known_rater(self, rater: str | None) -> str | None:
        if rater in self.server.planned.raters:
            return rater
        self._json(HTTPStatus.NOT_FOUND, {"error": f"unknown rater {rater!r}: open the link you were given"})
        return None

    def _file(self, path: str):
        target = self._resolve(path)
        if target is None:
            self._text(HTTPStatus.NOT_FOUND, "Not found")
            return
        body = target.read_bytes()
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind == "application/javascript":
            kind += "; charset=utf-8"
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", kind.replace("application/javascript", "text/javascript"))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def _resolve(self, path: str) -> Path | None:
        """The study folder's file at ``path``: never outside it, never a folder, a hidden
        file or the answers database."""
        parts = [part for part in unquote(path).split("/") if part]
        if not parts or any(part.startswith(".") or "\\" in part or "\0" in part for part in parts):
            return None
        target = self.server.site.joinpath(*parts).resolve()
        answers = self.server.answers
        if (
            not target.is_relative_to(self.server.site)
            or not target.is_file()
            or target.name in (answers.name, answers.name + "-wal", answers.name + "-shm", answers.name + "-journal")
        ):
            return None
        return target

    def _json(self, status: HTTPStatus, content: dict):
        body = json.dumps(content).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _text(self, status: HTTPStatus, text: str):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def make_server(site: Path, answers: Path, host: str = "127.0.0.1", port: int = 0) -> StudyServer:
    """The server, bound and ready for ``serve_forever()`` (``port=0``: a free port; its
    address is ``server.url``); ``server_close()`` closes and checkpoints the database."""
    return StudyServer((host, port), site, answers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sr3bench study-serve",
        description="Serve the study folder locally and store each answer when it is given.",
    )
    parser.add_argument("--site", type=Path, required=True, help="the study folder (sr3bench study-build)")
    parser.add_argument("--answers", type=Path, required=True, help="the answers database (SQLite), created if absent")
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to let other machines of the lab connect")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    server = make_server(arguments.site, arguments.answers, arguments.host, arguments.port)
    _print_urls(server, arguments.host)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    print(f"stopped; the answers are in {server.answers}", flush=True)
    return 0


def _print_urls(server: StudyServer, host: str) -> None:
    port = server.server_address[1]
    hosts = [server.url]
    if host in ("0.0.0.0", ""):
        hosts.append(f"http://{socket.gethostname()}:{port}")
    first = next(iter(server.planned.raters))
    print(f"study of {len(server.planned.raters)} raters served from {server.site}", flush=True)
    for base in hosts:
        print(f"  one link for every rater (each gets the next rater not started): {base}/start", flush=True)
        print(f"  a given rater's page: {base}/{PAGE}?rater={first}", flush=True)
    print(f"answers stored in {server.answers}; Ctrl-C stops", flush=True)


if __name__ == "__main__":
    sys.exit(main())
