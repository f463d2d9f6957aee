"""`vnehr auth account|activation|outbox ...`: accounts, citizens' security codes, the outbox."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta, timezone

import click

from vnehr.auth.commands import DATABASE, auth, opened

VIETNAM = timezone(timedelta(hours=7))


def _when(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).astimezone(VIETNAM).strftime("%Y-%m-%d %H:%M")


@auth.group()
def account() -> None:
    """Practitioner and operator accounts (citizens' come from activation codes)."""


@account.command("add")
@click.option("--kind", type=click.Choice(["practitioner", "operator"]), required=True)
@click.option("--username", required=True, help="The sign-in name (compared without case).")
@click.option("--name", default=None, help="The person's name, as pages show it.")
@click.option("--facility", default=None, help="Organization id (required for practitioners).")
@click.option(
    "--fhir-user",
    default=None,
    help="The person's resource, e.g. Practitioner/123 (required for practitioners).",
)
@click.option(
    "--password-stdin",
    is_flag=True,
    default=False,
    help="Read the password from stdin's first line instead of asking for it.",
)
@DATABASE
def account_add(
    kind: str,
    username: str,
    name: str | None,
    facility: str | None,
    fhir_user: str | None,
    password_stdin: bool,
    database: str | None,
) -> None:
    """Create an account; the password is asked for twice (never an option: it would stay in
    the shell's history)."""
    from vnehr.auth.accounts import AccountError

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with opened(database) as server:
        try:
            created = server.auth.accounts.create(
                kind,
                username,
                password=password,
                name=name,
                fhir_user=fhir_user,
                facility=facility,
            )
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{created.kind} account {created.username} created ({created.account_id})")


@account.command("list")
@click.option("--kind", type=click.Choice(["practitioner", "citizen", "operator"]), default=None)
@DATABASE
def account_list(kind: str | None, database: str | None) -> None:
    """The accounts: username, kind, state, TOTP, fhirUser, facility, name."""
    with opened(database) as server:
        accounts = server.auth.accounts.all(kind)
    for a in accounts:
        state = "disabled" if a.disabled else "active"
        totp = "totp" if a.totp_enabled else "-"
        click.echo(
            f"{a.username:<20} {a.kind:<12} {state:<8} {totp:<4} {a.fhir_user or '-':<24} "
            f"facility={a.facility or '-'}  {a.name or ''}".rstrip()
        )
    click.echo(f"{len(accounts)} accounts", err=True)


def _set_state(database: str | None, username: str, change: str) -> None:
    with opened(database) as server:
        accounts = server.auth.accounts
        found = accounts.by_username(username)
        if found is None:
            raise click.ClickException(f"No account {username}")
        getattr(accounts, change)(found.account_id)


@account.command("disable")
@click.argument("username")
@DATABASE
def account_disable(username: str, database: str | None) -> None:
    """Disable an account: it can no longer sign in (tokens already issued run out)."""
    _set_state(database, username, "disable")
    click.echo(f"account {username} disabled")


@account.command("enable")
@click.argument("username")
@DATABASE
def account_enable(username: str, database: str | None) -> None:
    """Enable a disabled account again."""
    _set_state(database, username, "enable")
    click.echo(f"account {username} enabled")


@account.command("reset-totp")
@click.argument("username")
@DATABASE
def account_reset_totp(username: str, database: str | None) -> None:
    """Turn TOTP off for an account (a lost phone); its owner may enrol again."""
    _set_state(database, username, "reset_totp")
    click.echo(f"TOTP turned off for {username}")


@auth.group()
def activation() -> None:
    """Citizens' one-time security codes (docs/auth.md)."""


@activation.command("issue")
@click.argument("cccd")
@click.option("--channel", type=click.Choice(["sms", "print"]), required=True)
@click.option("--recipient", default=None, help="The phone number (sms).")
@click.option("--issued-by", required=True, help="Who issues it (operator, facility), recorded.")
@DATABASE
def activation_issue(
    cccd: str, channel: str, recipient: str | None, issued_by: str, database: str | None
) -> None:
    """Issue a security code for CCCD, ending its earlier codes. print: the code is printed
    here, to hand over; sms: it goes to the outbox for the SMS gateway."""
    from vnehr.auth.activation import ActivationError

    with opened(database) as server:
        try:
            issued = server.auth.activation.issue(
                cccd, issued_by=issued_by, channel=channel, recipient=recipient
            )
        except ActivationError as exc:
            raise click.ClickException(str(exc)) from None
    if issued.code:
        click.echo(f"security code for CCCD {issued.cccd}: {issued.code}")
    else:
        click.echo(f"security code for CCCD {issued.cccd} queued for SMS to {issued.recipient}")
    click.echo(f"valid until {_when(issued.expires)} (Vietnam time)")


@auth.command("outbox")
@click.option("--all", "everything", is_flag=True, default=False, help="Delivered ones too.")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
@click.option(
    "--mark-sent", "sent", type=int, multiple=True, help="Record message ID as delivered."
)
@DATABASE
def outbox(everything: bool, limit: int, sent: tuple[int, ...], database: str | None) -> None:
    """Messages waiting for delivery (oldest first): id, channel, recipient, time, body.

    An SMS body holds the citizen's security code in clear: that is what the SMS gateway
    delivers. Show it only to whoever runs the delivery."""
    from vnehr.auth.outbox import Outbox

    with opened(database) as server:
        box = Outbox(server.store)
        for message in sent:
            if not box.mark_sent(message):
                raise click.ClickException(f"No pending message {message}")
            click.echo(f"message {message} marked sent")
        if sent:
            return
        messages = box.all(limit) if everything else box.pending(limit)
    for m in messages:
        state = f"sent {_when(m.sent)}" if m.sent is not None else "pending"
        click.echo(
            f"{m.message:>6}  {m.channel:<5} {m.recipient or '-':<14} {_when(m.created)}  "
            f"{state:<22} {m.body}"
        )
    click.echo(f"{len(messages)} messages", err=True)
