"""The ``ruvector-dag`` command line.

    ruvector-dag server start  [--pgdata DIR] [--pg 16|18] [--port N]
    ruvector-dag server stop   [--pgdata DIR]
    ruvector-dag server status [--pgdata DIR]
    ruvector-dag build         [--pg 16|18 ...] [--pg-config PATH ...]
    ruvector-dag demo          [--pgdata DIR] [--pg 16|18] [--dashboard-port P] [--no-dashboard]
    ruvector-dag dashboard     --dsn DSN [--port P]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DEFAULT_PGDATA = Path.home() / ".local" / "share" / "ruvector-dag" / "pgdata"


def _server(args: argparse.Namespace) -> Any:
    from .server import Server

    pgdata = Path(args.pgdata)
    version = args.pg
    if version is None:
        marker = pgdata / "PG_VERSION"
        version = int(marker.read_text().strip()) if marker.exists() else 16
    return Server(pgdata, pg_version=version, port=getattr(args, "port", None))


def cmd_server(args: argparse.Namespace) -> int:
    srv = _server(args)
    if args.action == "start":
        srv.start()
        print(f"PostgreSQL {srv.pg_version} with ruvector_dag is running in {srv.pgdata}")
        print(f"DSN: {srv.dsn}")
        print(f"     psql '{srv.dsn}'")
    elif args.action == "stop":
        srv.stop()
        print(f"stopped {srv.pgdata}")
    else:
        print(json.dumps(srv.status(), indent=2))
        return 0 if srv.is_running() else 3
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from . import buildext

    argv: list[str] = ["install"]
    for v in args.pg or []:
        argv += ["--pg", str(v)]
    for p in args.pg_config or []:
        argv += ["--pg-config", p]
    if args.force:
        argv.append("--force")
    return buildext.main(argv)


def _dashboard(dsn: str, port: int) -> int:
    """Serve the dashboard in the foreground; its address (a fresh token in its path) printed once bound."""
    import secrets

    from ..dashboard.app import serve

    def announce(line: str) -> None:
        if line.startswith("http"):
            print(f"\nruvector-dag dashboard: {line}\n  (it reads as the DSN's role, so that role's privileges "
                  "decide what it shows; Ctrl-C stops it)", flush=True)
        else:
            print(line, flush=True)

    # A port someone else holds: werkzeug says so and exits 1, before any address is printed.
    serve(dsn, port, secrets.token_urlsafe(18), announce)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from . import demo

    server = _server(args)
    rc = demo.run(server)
    if rc or args.no_dashboard:
        return rc
    return _dashboard(server.dsn, args.dashboard_port)


def cmd_dashboard(args: argparse.Namespace) -> int:
    return _dashboard(args.dsn, args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ruvector-dag", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    srv = sub.add_parser("server", help="manage the embedded PostgreSQL with ruvector_dag preloaded")
    srv.add_argument("action", choices=("start", "stop", "status"))
    srv.add_argument("--pgdata", default=str(DEFAULT_PGDATA), help=f"data directory (default {DEFAULT_PGDATA})")
    srv.add_argument("--pg", type=int, choices=(16, 18), help="PostgreSQL major (default: the cluster's, else 16)")
    srv.add_argument("--port", type=int, help="TCP port on 127.0.0.1 (default: recorded, else a free one)")
    srv.set_defaults(func=cmd_server)

    bld = sub.add_parser("build", help="build and install the C shim (same as python build.py)")
    bld.add_argument("--pg", type=int, action="append", choices=(16, 18))
    bld.add_argument("--pg-config", action="append")
    bld.add_argument("--force", action="store_true")
    bld.set_defaults(func=cmd_build)

    demo = sub.add_parser("demo", help="start the embedded server and run the demonstration")
    demo.add_argument("--pgdata", default=str(DEFAULT_PGDATA))
    demo.add_argument("--pg", type=int, choices=(16, 18))
    demo.add_argument("--dashboard-port", type=int, default=8050, help="port of the dashboard it ends by serving")
    demo.add_argument("--no-dashboard", action="store_true", help="end without serving the dashboard")
    demo.set_defaults(func=cmd_demo)

    dash = sub.add_parser("dashboard", help="serve the web dashboard on 127.0.0.1 (read as the DSN's role)")
    dash.add_argument("--dsn", required=True, help="libpq connection string of the role whose view to show")
    dash.add_argument("--port", type=int, default=8050)
    dash.set_defaults(func=cmd_dashboard)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:  # `pip install -e .` installs the engine only
        print(f"ruvector-dag: {exc.name} is missing: the command line needs the tools extra "
              "(pip install -e '.[tools]')", file=sys.stderr)
        return 1
    except Exception as exc:  # a CLI reports, it does not dump a traceback at users
        from .server import ServerError

        if isinstance(exc, (ServerError, ValueError)):
            print(f"ruvector-dag: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
