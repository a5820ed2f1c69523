"""``python -m erp_api keys create | list | revoke | local-admin``: API keys from the command line.

``create`` prints the new key alone on the last line of its output (so ``| tail -n1`` captures it);
it is shown once and only its digest is stored. ``local-admin`` is what ``make run`` calls: it keeps
an admin key for local use in a file only its owner can read, creating one on first use.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from erp_api.errors import ApiError
from erp_api.security.key_store import KeyStore
from erp_api.security.principal import Principal, bind_principal, reset_principal
from erp_api.security.roles import Role
from erp_api.settings import VAR_DIR, Settings

LOCAL_ADMIN_FILE = VAR_DIR / "admin-key"
LOCAL_ADMIN_NAME = "local admin (make run)"
COMMAND_LINE = Principal(None, "command line", Role.ADMIN)


def add_key_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``keys`` and its subcommands on the top-level parser."""
    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="create a key; prints it once, on the last line")
    create.add_argument("--role", required=True, choices=[role.value for role in Role])
    create.add_argument("--name", required=True, help='who holds the key, e.g. "line 3 tablet"')
    listing = actions.add_parser("list", help="list keys (ids, prefixes, roles; never the keys)")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    revoke = actions.add_parser("revoke", help="revoke a key by id or prefix")
    revoke.add_argument("key", help="the key's id or prefix (as `keys list` shows)")
    local = actions.add_parser("local-admin", help="print the local admin key, creating it on first use")
    local.add_argument("--file", type=Path, default=LOCAL_ADMIN_FILE)


async def run_key_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``keys`` subcommand against the configured database; returns the exit status."""
    from erp_api.db import create_engine, create_session_factory

    engine = create_engine(settings)
    store = KeyStore(create_session_factory(engine), cache_ttl_seconds=0, cache_max_entries=1)
    token = bind_principal(COMMAND_LINE)
    commands: dict[str, Callable[[], Awaitable[int]]] = {
        "create": lambda: _create(store, Role(args.role), args.name),
        "list": lambda: _list(store, include_revoked=args.all),
        "revoke": lambda: _revoke(store, args.key),
        "local-admin": lambda: _local_admin(store, args.file),
    }
    try:
        return await commands[args.keys_command]()
    except ApiError as exc:
        print(f"error: {exc.detail}")
        return 1
    finally:
        reset_principal(token)
        await engine.dispose()


async def _create(store: KeyStore, role: Role, name: str) -> int:
    row, secret = await store.create(role=role, name=name)
    print(f"created key {row.id} ({row.prefix}) for {row.name!r} with role {row.role}")
    print("the key is shown only now; store it where its holder can use it:")
    print(secret)
    return 0


async def _list(store: KeyStore, *, include_revoked: bool) -> int:
    rows = await store.list_keys(include_revoked=include_revoked)
    print(f"{'id':>6}  {'prefix':<12}  {'role':<15}  {'created':<20}  {'revoked':<20}  name")
    for row in rows:
        revoked = row.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if row.revoked_at else "-"
        created = row.created_at.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{row.id:>6}  {row.prefix:<12}  {row.role:<15}  {created:<20}  {revoked:<20}  {row.name}")
    return 0


async def _revoke(store: KeyStore, reference: str) -> int:
    row = await store.revoke(reference)
    print(
        f"revoked key {row.id} ({row.prefix}, {row.name!r}); workers stop accepting it within the auth cache TTL"
    )
    return 0


async def _local_admin(store: KeyStore, path: Path) -> int:
    """Reuse the key in ``path`` if it is still an active admin key here, else create one and save it."""
    existing = _read_key(path)
    principal = await store.authenticate(existing) if existing else None
    if principal is not None and principal.role is Role.ADMIN:
        print(f"local admin key (kept in {path}):")
        print(existing)
        return 0
    row, secret = await store.create(role=Role.ADMIN, name=LOCAL_ADMIN_NAME)
    _save_key(path, secret)
    print(f"created local admin key {row.id} ({row.prefix}), saved to {path} (mode 0600):")
    print(secret)
    return 0


def _read_key(path: Path) -> str:
    return path.read_text().strip() if path.exists() else ""


def _save_key(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created with owner-only permissions: the key never exists in a file others can read.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret + "\n")
    os.chmod(path, 0o600)
