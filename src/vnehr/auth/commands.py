"""`vnehr auth ...`: signing keys, clients, accounts and activation codes (docs/cli.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

DATABASE = click.option("--database", default=None, help="Database URL (or VNEHR_DATABASE_URL).")


@contextmanager
def opened(database: str | None) -> Iterator[Any]:
    """A wired server (no HTTP) on the configured database, closed afterwards."""
    from vnehr.app import create_server
    from vnehr.cli import _settings

    # The CLI is a trusted local caller that serves nothing: it needs no signing key.
    server = create_server(_settings(database))
    try:
        yield server
    finally:
        server.close()


@click.group()
def auth() -> None:
    """Authentication: signing keys, OAuth clients, accounts, activation codes."""


@auth.group()
def keys() -> None:
    """The server's token-signing keys (a JWK Set file, VNEHR_AUTH_KEYS)."""


@keys.command("rotate")
@click.option("--file", "path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--retain",
    type=int,
    default=86400,
    show_default=True,
    help="Seconds a retired key keeps verifying (longer than any token it signed lives).",
)
def keys_rotate(path: Path, retain: int) -> None:
    """Put a new signing key in front (creating FILE if missing); drop long-retired keys."""
    from vnehr.auth.keys import KeyFileError, SigningKeys

    if path.exists():
        try:
            current = SigningKeys.load(path)
        except KeyFileError as exc:
            raise click.ClickException(str(exc)) from None
        new = current.rotated(retain)
    else:
        new = SigningKeys.generate()
    new.save(path)
    click.echo(f"signing key {new.kid} is current; {len(new.keys)} key(s) in {path}")


@keys.command("public")
@click.option("--file", "path", required=True, type=click.Path(exists=True, dir_okay=False))
def keys_public(path: str) -> None:
    """Print the public JWK Set (what /auth/jwks serves)."""
    from vnehr.auth.keys import KeyFileError, SigningKeys

    try:
        click.echo(json.dumps(SigningKeys.load(path).public_jwks(), indent=1))
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None


@auth.group()
def client() -> None:
    """OAuth clients: hospital systems (backend services) and apps."""


@client.command("add")
@click.option("--name", required=True, help="The client's name, shown on the consent page.")
@click.option("--kind", type=click.Choice(["backend", "app"]), required=True)
@click.option("--facility", default=None, help="Organization id of the client's facility.")
@click.option("--scope", required=True, help='The most it may get, e.g. "system/*.rs".')
@click.option(
    "--auth-method",
    type=click.Choice(["private_key_jwt", "client_secret_basic", "client_secret_post", "none"]),
    default=None,
    help="Token endpoint authentication [backend: private_key_jwt; app: none].",
)
@click.option("--jwks", "jwks_file", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--jwks-uri", default=None)
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--client-id", default=None, help="A chosen client_id [random].")
@DATABASE
def client_add(
    name: str,
    kind: str,
    facility: str | None,
    scope: str,
    auth_method: str | None,
    jwks_file: str | None,
    jwks_uri: str | None,
    redirect_uris: tuple[str, ...],
    client_id: str | None,
    database: str | None,
) -> None:
    """Register a client; a client_secret_* client's secret is printed once."""
    from vnehr.auth.clients import ClientError

    method = auth_method or ("private_key_jwt" if kind == "backend" else "none")
    try:
        jwks = json.loads(Path(jwks_file).read_text()) if jwks_file else None
    except ValueError:
        raise click.ClickException(f"{jwks_file} is not JSON") from None
    with opened(database) as server:
        try:
            registered, secret = server.auth.service.clients.register(
                name,
                kind=kind,
                auth_method=method,
                scopes=scope,
                facility=facility,
                jwks=jwks,
                jwks_uri=jwks_uri,
                redirect_uris=redirect_uris,
                client_id=client_id,
            )
        except ClientError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"client_id: {registered.client_id}")
    if secret:
        click.echo(f"client_secret: {secret}   (shown once: store it now)")


@client.command("list")
@DATABASE
def client_list(database: str | None) -> None:
    """The registered clients."""
    with opened(database) as server:
        for c in server.auth.service.clients.all():
            state = "disabled" if c.disabled else "active"
            click.echo(
                f"{c.client_id}  {c.kind:<7} {c.auth_method:<19} {state:<8} "
                f"facility={c.facility or '-'}  {c.name}  [{c.scopes.text()}]"
            )


@client.command("disable")
@click.argument("client_id")
@DATABASE
def client_disable(client_id: str, database: str | None) -> None:
    """Disable a client: it gets no new tokens."""
    with opened(database) as server:
        if not server.auth.service.clients.set_disabled(client_id, True):
            raise click.ClickException(f"No client {client_id}")
    click.echo(f"client {client_id} disabled")


@auth.command("events")
@click.option("--kind", default=None, help="token, login, activation, request, revoke, ...")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@DATABASE
def events(kind: str | None, limit: int, database: str | None) -> None:
    """The latest security events (sign-ins, tokens issued, refusals), newest first."""
    from datetime import UTC, datetime

    with opened(database) as server:
        for e in server.auth.service.events.recent(kind, limit):
            at = datetime.fromtimestamp(e.at, UTC).strftime("%Y-%m-%d %H:%M:%S")
            who = e.account_id or e.client_id or "-"
            click.echo(f"{at}  {e.kind:<10} {e.outcome:<7} {who}  {json.dumps(e.detail)}")


from vnehr.auth import account_commands  # noqa: E402,F401
