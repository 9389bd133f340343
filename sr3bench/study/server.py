"""``sr3bench study-serve``: the study folder served locally (standard library only), each
answer mapped through the full plan (kept outside the served folder) and stored in SQLite
when it is given.

    GET  /                         about the study: its preset, raters planned, handed out,
                                   started and finished, and the /start link (hands out nothing)
    GET  /start                    redirect to the page of the first planned rater neither
                                   started nor handed out, recorded as handed out (409 when none is
                                   left; 404 with ``--no-start``, when raters get their own links;
                                   403 when a browser loads it as an image or script of another
                                   page, Sec-Fetch-Dest other than document, which would use raters up)
    GET  /index.html?plan=PAGE     the page of the rater whose plan is raters/PAGE.js (any file
                                   of the study folder; no listing)
    GET  /api/state?plan=PAGE      {"rater", "next_trial", "trials"} of that page's rater
    POST /api/answer               one answer (JSON: importing.CSV_COLUMNS) of the rater whose
                                   page the header X-Study-Page names -> {"stored": bool,
                                   "next_trial": n}; a re-sent answer is not stored twice; 400 for
                                   a malformed answer or one whose images are not the plan's (the
                                   page was built for another plan), 409 for one ahead of the
                                   rater's next trial, 415 unless sent as application/json, 403
                                   from another web page (an Origin other than this server's) or
                                   for another rater than the page's

A rater's page name (a keyed hash, build.py) is the only credential: a rater ID opens
nothing, so a rater cannot fetch other raters' pages (whose trials, compared with their own,
would show which file recurs: the photograph) nor answer in their name.

The rater's state lives in the database only, so a page reload or a server restart resumes
at the rater's next trial; so do the hand-outs of /start (a table of the database), so a
restarted server never hands a rater to a second person. Any GET of /start uses one up,
also one by a link-preview bot or a chat program fetching the link to show a preview: give
raters the link in a way that is not previewed, or hand out each rater's own link
(``sr3bench study-links``). Someone who opens /start again and again collects several
raters' pages: for raters you do not trust, hand out their own links and serve with
``--no-start``.

At start the database is tied to the plan (``store.bind_plan``): one holding answers given
under another build of the study is refused. Each connection has a 30 s socket timeout, so
a stalled client cannot hold a thread.
"""

from __future__ import annotations

import argparse
import html
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
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from sr3bench.study.build import check_site
from sr3bench.study.importing import OtherPlanError, PlannedTrials
from sr3bench.study.plan import plan_fingerprint, read_plan
from sr3bench.study.store import (
    StoreError,
    answered_counts,
    bind_plan,
    check_origin,
    checkpoint,
    database_files,
    hand_out,
    handed_out,
    next_trial,
    open_store,
    record,
)

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
PAGE = "index.html"
# The page and its files come from this server only (the study folder is self-contained).
CONTENT_SECURITY_POLICY = "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


class StudyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, plan_file: Path, site: Path, answers: Path, hands_out: bool = True):
        self.hands_out = hands_out  # whether /start hands out raters
        self.plan_file = Path(plan_file).resolve()
        self.site = Path(site).resolve()
        self.answers = Path(answers).resolve()
        if self.plan_file.is_relative_to(self.site):
            raise ValueError(
                f"{self.plan_file} is inside the served folder {self.site}: the full plan says which image is "
                "which method's and must stay outside it (rebuild the study)"
            )
        plan = read_plan(self.plan_file)
        self.planned = PlannedTrials(plan, plan_fingerprint(self.plan_file))
        check_site(self.site, plan, self.plan_file)
        self.rater_of_page = {page: rater for rater, page in self.planned.pages.items()}
        self.connection = open_store(self.answers)
        try:
            check_origin(self.connection, "served")  # refuse at once to add human answers to simulated ones
            bind_plan(self.connection, self.planned.fingerprint)  # and to answers of another build
        except sqlite3.Error as error:
            self.connection.close()
            raise StoreError(f"{self.answers}: {error}") from error
        except BaseException:
            self.connection.close()
            raise
        self.lock = threading.Lock()  # one connection, used by one request at a time
        try:
            super().__init__(address, StudyHandler)
        except BaseException:
            if self.connection is not None:  # a failed bind has closed it already (server_close)
                self.connection.close()
            raise

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"

    @property
    def preset(self) -> str:
        return str(self.planned.study.get("preset", "?"))

    def next_trial(self, rater: str) -> int:
        with self.lock:
            return next_trial(self.connection, rater)

    def store(self, row: dict) -> tuple[bool, int]:
        with self.lock:
            stored = record(self.connection, row)
            return stored, next_trial(self.connection, row["rater"])

    def rater_to_start(self) -> str | None:
        """The first planned rater who has no answer and whose link was not handed out yet
        (by this server or an earlier one on the same database), recorded as handed out."""
        with self.lock:
            return hand_out(self.connection, self.planned.raters)

    def progress(self) -> dict[str, int]:
        """How many raters are planned, handed out, started and finished."""
        with self.lock:
            answered = answered_counts(self.connection)
            given = handed_out(self.connection)
        raters = self.planned.raters
        return {
            "planned": len(raters),
            "handed out": len(given & set(raters)),
            "started": sum(1 for rater in raters if answered.get(rater, 0) > 0),
            "finished": sum(1 for rater in raters if answered.get(rater, 0) >= self.planned.count(rater)),
        }

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
    timeout = 30  # seconds a client may stall before its connection is closed

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self):  # noqa: N802 - the base class's name
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        if url.path == "/":
            self._about()
        elif url.path == "/start" and self.server.hands_out:
            if self.headers.get("Sec-Fetch-Dest", "document") != "document":  # an <img> or fetch() of another page
                self._text(HTTPStatus.FORBIDDEN, "/start is opened as a page, not loaded by another one.")
                return
            self._start()
        elif url.path == "/start":
            self._text(HTTPStatus.NOT_FOUND, "This study hands out no links here: open the link you were given.")
        elif url.path == "/api/state":
            rater = self._page_rater(query.get("plan"))
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
        refusal = self._foreign_request()
        if refusal:
            self._json(*refusal)
            return
        length = self.headers.get("Content-Length", "")
        length = int(length) if length.isdigit() else 0
        if not 0 < length <= MAX_BODY:
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"an answer is a JSON object of at most {MAX_BODY} bytes"})
            return
        try:
            answer = json.loads(self.rfile.read(length))
            if not isinstance(answer, dict):
                raise ValueError("an answer is a JSON object")
        except (ValueError, RecursionError) as error:  # json.JSONDecodeError, JSON nested too deep
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"answer refused: {error}"})
            return
        # The page first: a refusal must tell nothing of another rater's trials.
        page_rater = self._page_rater(self.headers.get("X-Study-Page"))
        if page_rater is None:
            return
        if answer.get("rater") != page_rater:
            self._json(HTTPStatus.FORBIDDEN, {"error": "refused: a page answers for its own rater only"})
            return
        try:
            if not answer.get("user_agent"):
                answer["user_agent"] = self.headers.get("User-Agent", "")
            row = self.server.planned.to_row(answer, "served")
        except OtherPlanError as error:
            log.warning("answer refused: %s", error)
            self._json(HTTPStatus.BAD_REQUEST, {"error": "this page was built for another plan: reload"})
            return
        except ValueError as error:  # an AnswerError: of the page's own rater
            log.warning("answer refused: %s", error)
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"answer refused: {error}"})
            return
        expected = self.server.next_trial(row["rater"])
        if row["trial"] > expected:
            message = f"rater {row['rater']}'s trial {row['trial']} comes after trial {expected}, not answered"
            self._json(HTTPStatus.CONFLICT, {"error": message, "next_trial": expected})
            return
        try:
            stored, following = self.server.store(row)
        except (StoreError, sqlite3.Error) as error:  # the page shows it waits, and sends the answer again
            log.error("answer of rater %s, trial %d not stored: %s", row["rater"], row["trial"], error)
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"not stored: {error}"})
            return
        self._json(HTTPStatus.OK, {"stored": stored, "next_trial": following})

    def _foreign_request(self) -> tuple[HTTPStatus, dict] | None:
        """Why a POST is refused as not coming from the study page, or None. A browser sends
        application/json across origins only after a preflight this server never grants, and
        always names the page's origin; a program without a browser sends no Origin."""
        kind = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            return HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {
                "error": f"an answer is sent as Content-Type: application/json, not {kind or 'without one'}"
            }
        origin = self.headers.get("Origin")
        if origin is not None and origin.lower() not in self._own_origins():
            return HTTPStatus.FORBIDDEN, {
                "error": f"refused: an answer comes from the study's own page, not from {origin}"
            }
        return None

    def _own_origins(self) -> set[str]:
        """``http://`` and the Host the browser asked for; on a loopback address only a
        loopback name, so a page of another site whose name resolves here cannot post."""
        host = (self.headers.get("Host") or "").strip().lower()
        if not host:
            return set()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        try:
            loopback = ip_address(str(self.server.server_address[0])).is_loopback
        except ValueError:
            loopback = False
        if loopback and name not in LOOPBACK_NAMES:
            return set()
        return {f"http://{host}"}

    def _about(self):
        """A small page about the study; it hands out no rater."""
        counts = self.server.progress()
        rows = "".join(f"<tr><th>{html.escape(key)}</th><td>{value}</td></tr>" for key, value in counts.items())
        body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Study {html.escape(self.server.preset)}</title>
<link rel="icon" href="data:,"></head>
<body><h1>Image study ({html.escape(self.server.preset)})</h1>
<table id="raters">{rows}</table>
{self._how_raters_start()}
</body></html>
"""
        self._send(HTTPStatus.OK, body.encode(), "text/html; charset=utf-8", extra={"Cache-Control": "no-store"})

    def _how_raters_start(self) -> str:
        if not self.server.hands_out:
            return "<p>Each rater opens the link handed out to them (<code>sr3bench study-links</code>).</p>"
        return (
            '<p>Each rater opens <a id="start" href="/start">/start</a>, which hands out the next rater not started. '
            "Opening it uses one rater up, so do not open it to try the study: open a rater's own link for that "
            "(<code>sr3bench study-links</code>).</p>"
        )

    def _start(self):
        rater = self.server.rater_to_start()
        if rater is None:
            self._text(HTTPStatus.CONFLICT, "Every rater of this study has started: there is no link left to hand out.")
            return
        self.send_response(HTTPStatus.SEE_OTHER)
        self.send_header("Location", f"/{PAGE}?plan={quote(self.server.planned.pages[rater])}")
        self.send_header("Content-Length", "0")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()

    def _page_rater(self, page: str | None) -> str | None:
        """The rater whose page ``page`` names, or None after a 403 (a wrong or no page)."""
        rater = self.server.rater_of_page.get(page or "")
        if rater is None:
            self._json(
                HTTPStatus.FORBIDDEN, {"error": "this page is not one of the study's: open the link you were given"}
            )
        return rater

    def _file(self, path: str):
        target = self._resolve(path)
        if target is None:
            self._text(HTTPStatus.NOT_FOUND, "Not found")
            return
        body = target.read_bytes()
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind == "application/javascript":
            kind += "; charset=utf-8"
        self._send(HTTPStatus.OK, body, kind.replace("application/javascript", "text/javascript"))

    def _resolve(self, path: str) -> Path | None:
        """The study folder's file at ``path``: never outside it, never a folder, a hidden
        file, the answers database or the full plan."""
        parts = [part for part in unquote(path).split("/") if part]
        if not parts or any(part.startswith(".") or "\\" in part or "\0" in part for part in parts):
            return None
        target = self.server.site.joinpath(*parts).resolve()
        database = database_files(self.server.answers)
        private = {file.name for file in database} | {database[0].name + "-journal"}
        if (
            not target.is_relative_to(self.server.site)
            or not target.is_file()
            or target.name in private
            or target == self.server.plan_file
        ):
            return None
        return target

    def _json(self, status: HTTPStatus, content: dict):
        self._send(status, json.dumps(content).encode(), "application/json", extra={"Cache-Control": "no-store"})

    def _text(self, status: HTTPStatus, text: str):
        self._send(status, text.encode(), "text/plain; charset=utf-8")

    def _send(self, status: HTTPStatus, body: bytes, kind: str, extra: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {
            "Cache-Control": "no-cache",
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            **(extra or {}),
        }.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def make_server(
    plan_file: Path, site: Path, answers: Path, host: str = "127.0.0.1", port: int = 0, hands_out: bool = True
) -> StudyServer:
    """The server of the study folder ``site`` whose full plan is ``plan_file``, bound and
    ready for ``serve_forever()`` (``port=0``: a free port; its address is ``server.url``);
    ``server_close()`` closes and checkpoints the database. A StoreError when ``answers``
    holds simulated answers or answers given under another build of the study."""
    return StudyServer((host, port), plan_file, site, answers, hands_out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sr3bench study-serve",
        description="Serve the study folder locally and store each answer when it is given.",
    )
    parser.add_argument("--plan", type=Path, required=True, help="the full plan (studies/PRESET/plan.json)")
    parser.add_argument("--site", type=Path, required=True, help="the study folder (sr3bench study-build)")
    parser.add_argument("--answers", type=Path, required=True, help="the answers database (SQLite), created if absent")
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to let other machines of the lab connect")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument(
        "--no-start", action="store_true", help="no /start link: raters open their own links (sr3bench study-links)"
    )
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    server = make_server(
        arguments.plan, arguments.site, arguments.answers, arguments.host, arguments.port, not arguments.no_start
    )
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
    print(f"study {server.preset} of {len(server.planned.raters)} raters served from {server.site}", flush=True)
    for base in hosts:
        print(f"  about the study (raters started and finished): {base}/", flush=True)
        if server.hands_out:
            print(f"  one link for every rater (each opening hands out the next rater): {base}/start", flush=True)
        print(f"  each rater's own link: sr3bench study-links --preset {server.preset} --base-url {base}/", flush=True)
    print(f"answers stored in {server.answers}; Ctrl-C stops", flush=True)


if __name__ == "__main__":
    sys.exit(main())
