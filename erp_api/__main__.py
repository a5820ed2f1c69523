"""Command line: ``erp-api migrate | seed | serve | keys ... | rollups check|rebuild``.

The same as ``python -m erp_api ...``. Commands that read or write rows refuse, in one line, a
database that has not been migrated yet.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, Final

from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from erp_api.security.cli import add_key_commands, run_key_command
from erp_api.settings import Settings, SettingsError, load_settings

NEEDS_SCHEMA: Final = frozenset({"seed", "keys", "rollups"})
"""Commands that read or write rows at once, so a missing schema is reported before they start."""

SERVER_OPTIONS: Final[dict[str, Any]] = {
    # Named, not "auto": without the C extensions uvicorn would fall back to pure Python, silently
    # serving at a fraction of the speed.
    "loop": "uvloop",
    # httptools (C) with a header timeout and a request deadline (erp_api/serving.py); an import
    # string, so that every worker process imports the class.
    "http": "erp_api.serving:EdgeProtocol",
    "log_level": "warning",
    "log_config": None,  # records go to the JSON handler configure_logging() installed
    "access_log": False,  # the app writes its own access line per request
    "server_header": False,  # no "server: uvicorn": nothing to fingerprint (the Date header stays)
    "timeout_graceful_shutdown": 10,
}
"""uvicorn's options for ``serve``, host, port and workers aside (``benchmarks/bare_app.py`` uses them too);
those taken from the settings (timeouts, trusted proxies) are ``erp_api.serving.uvicorn_options``."""


async def _seed(settings: Settings) -> None:
    from erp_api.db import create_engine, create_session_factory
    from erp_api.demo import seed_charges, seed_quality

    engine = create_engine(settings)
    try:
        sessions = create_session_factory(engine)
        added = await seed_charges(sessions)
        specs, measurements = await seed_quality(sessions)
    finally:
        await engine.dispose()
    print(f"demo data: {added} charges added" if added else "demo data: charges already present")
    print(
        f"demo data: {specs} quality specs and {measurements} measurements added"
        if specs
        else "demo data: quality specs already present"
    )


def _migrated(settings: Settings) -> bool:
    from erp_api.migrate import is_migrated

    try:
        if is_migrated(settings):
            return True
    except (OSError, SQLAlchemyError) as exc:
        print(f"cannot reach the database: {exc.__class__.__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return False
    print(
        f"the database has no tables yet ({_where(settings)}): run `erp-api migrate` first", file=sys.stderr
    )
    return False


def _where(settings: Settings) -> str:
    if settings.sqlite_path is not None:
        return str(settings.sqlite_path)
    return make_url(settings.database_url).render_as_string(hide_password=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="erp-api", description="erp-api administration")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply database migrations")
    commands.add_parser("seed", help="add demo data to an empty database")
    commands.add_parser("serve", help="serve the API with uvicorn on ERP_HOST:ERP_PORT")
    add_key_commands(commands)
    rollups = commands.add_parser(
        "rollups",
        help="check the quality rollups against the measurements (exit 1 if they differ), or rebuild them",
    )
    rollups.add_argument("action", choices=("check", "rebuild"))
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command in NEEDS_SCHEMA and not _migrated(settings):
        return 1

    if args.command == "keys":
        return asyncio.run(run_key_command(args, settings))
    if args.command == "rollups":
        from erp_api.quality.summaries.reconciliation import run_command

        return asyncio.run(run_command(settings, args.action))
    if args.command == "migrate":
        from erp_api.migrate import upgrade

        upgrade(settings)
    elif args.command == "seed":
        asyncio.run(_seed(settings))
    elif args.command == "serve":
        import uvicorn

        from erp_api.observability.logging import configure_logging
        from erp_api.observability.multiprocess import prepare_workers
        from erp_api.serving import uvicorn_options

        # Before any worker imports the app: they must all write metrics to one, emptied directory.
        prepare_workers(settings)
        configure_logging(settings.log_level)
        uvicorn.run(
            "erp_api.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            **SERVER_OPTIONS,
            **uvicorn_options(settings),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
