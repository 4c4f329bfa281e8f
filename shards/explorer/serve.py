"""`soundry view`: a version's explorer page (or a training run's page) served on localhost, from a
local folder or an fsspec URL (read through fsspec, so a bucket needs no download first). Only the
page's folders are served (a version's explorer, card plots and card); nothing else leaves it."""

from __future__ import annotations

import http.server
import mimetypes
import posixpath
import urllib.parse

from curation.core.errors import UserError
from curation.core.storage import exists, filesystem, join
from shards.explorer.write import PAGE

VERSION_FILES = ("explore/", "card/", "README.md")
TYPES = {".opus": "audio/ogg", ".js": "text/javascript", ".md": "text/markdown; charset=utf-8"}


class NoExplorer(UserError):
    """A version without explore/index.html (published before the explorer existed)."""


def make_server(
    version: str, host: str = "127.0.0.1", port: int = 0, served: tuple[str, ...] = VERSION_FILES
) -> http.server.ThreadingHTTPServer:
    """A server (not started) for the folder's explore/index.html and its `served` paths; port 0: a free one."""
    if not exists(join(version, PAGE)):
        raise NoExplorer(
            f"{version} has no {PAGE}: `soundry publish` writes one (a version derived by `soundry encode` has "
            "none: view the version it was derived from); publish older versions again"
        )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = posixpath.normpath(urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)).lstrip("/")
            if path in ("", "."):
                self.send_response(302)
                self.send_header("Location", "/explore/index.html")
                self.end_headers()
                return
            if ".." in path.split("/") or not path.startswith(served):
                self.send_error(404)
                return
            fs, where = filesystem(join(version, path))
            try:
                size = fs.size(where)
            except (FileNotFoundError, IsADirectoryError):
                self.send_error(404)
                return
            if size is None or fs.isdir(where):
                self.send_error(404)
                return
            wanted = _byte_range(self.headers.get("Range"), size)
            if wanted == "unsatisfiable":
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.end_headers()
                return
            first, last = wanted or (0, size - 1)
            with fs.open(where, "rb") as stream:
                stream.seek(first)
                body = stream.read(last - first + 1)
            kind = TYPES.get(posixpath.splitext(path)[1]) or mimetypes.guess_type(path)[0] or "application/octet-stream"
            # Ranges let a player seek (and learn an Ogg stream's length) before it has read the whole excerpt.
            self.send_response(206 if wanted else 200)
            self.send_header("Content-Type", kind)
            self.send_header("Accept-Ranges", "bytes")
            if wanted:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet: the page makes many requests
            pass

    return http.server.ThreadingHTTPServer((host, port), Handler)


def _byte_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """The one byte range a `Range: bytes=...` header asks for, inclusive; None: the whole file
    (no header, or one this server does not serve partially, such as several ranges)."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    start, _, end = header[len("bytes=") :].strip().partition("-")
    try:
        if not start:  # the last `end` bytes
            first, last = max(0, size - int(end)), size - 1
        else:
            first, last = int(start), min(int(end), size - 1) if end else size - 1
    except ValueError:
        return None
    if first > last or first >= size:
        return "unsatisfiable"
    return first, last
