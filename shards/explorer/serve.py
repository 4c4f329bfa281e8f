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
                with fs.open(where, "rb") as stream:
                    body = stream.read()
            except (FileNotFoundError, IsADirectoryError):
                self.send_error(404)
                return
            kind = TYPES.get(posixpath.splitext(path)[1]) or mimetypes.guess_type(path)[0] or "application/octet-stream"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet: the page makes many requests
            pass

    return http.server.ThreadingHTTPServer((host, port), Handler)
