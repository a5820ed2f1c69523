"""Command line: ``python -m erp_api migrate | seed | serve``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from erp_api.settings import Settings, SettingsError, load_settings


async def _seed(settings: Settings) -> None:
    from erp_api.db import create_engine, create_session_factory
    from erp_api.demo import seed_charges

    engine = create_engine(settings)
    try:
        added = await seed_charges(create_session_factory(engine))
    finally:
        await engine.dispose()
    print(f"demo data: {added} charges added" if added else "demo data: already present, nothing added")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m erp_api", description="erp-api administration")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply database migrations")
    commands.add_parser("seed", help="add demo data to an empty database")
    commands.add_parser("serve", help="serve the API with uvicorn on ERP_HOST:ERP_PORT")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2

    if args.command == "migrate":
        from erp_api.migrate import upgrade

        upgrade(settings)
    elif args.command == "seed":
        asyncio.run(_seed(settings))
    elif args.command == "serve":
        import uvicorn

        uvicorn.run(
            "erp_api.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            timeout_graceful_shutdown=10,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
