"""`soundry view`: serve a published version's explorer page on localhost and open it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def add_commands(commands: argparse._SubParsersAction) -> None:
    summary = "listen to a published version (or a training run's demos): serve its page on localhost and open it"
    parser = commands.add_parser(
        "view",
        help=summary,
        description=f"{summary[0].upper()}{summary[1:]}. The page (explore/index.html, written by `soundry publish`) "
        "is static: it also opens from the folder itself or from any static file host. Given a `soundry train` output "
        "folder, it writes and serves the run's page: its demos across steps, per prompt, and its loss curves. "
        "Ctrl-C stops the server.",
    )
    parser.add_argument(
        "version", help="version folder or fsspec URL (s3://bucket/datasets/v1), or a training run folder"
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine)")
    parser.add_argument("--no-open", action="store_true", help="print the address instead of opening a browser")
    parser.set_defaults(handler=_view)


def _view(args: argparse.Namespace, console: Console) -> int:
    import webbrowser

    from model.training.run_page import is_run, write_run_page
    from shards.explorer.serve import make_server

    if is_run(args.version):
        write_run_page(args.version)
        server = make_server(args.version, args.host, args.port, served=("explore/", "demos/"))
    else:
        server = make_server(args.version, args.host, args.port)
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}/explore/index.html"
    console.print(f"serving {args.version} at {url} (Ctrl-C stops)", highlight=False)
    if not args.no_open:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
