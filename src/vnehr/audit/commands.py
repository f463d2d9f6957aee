"""`vnehr audit verify|list`: check the hash chain; read the trail as an operator (docs/cli.md)."""

from __future__ import annotations

from typing import Any

import click

from vnehr.audit import codes
from vnehr.audit.chain import verify as verify_chain
from vnehr.auth.commands import DATABASE, opened
from vnehr.interactions.exchange import FhirRequest


@click.group()
def audit() -> None:
    """The audit trail: verify its hash chain, list its records."""


@audit.command("verify")
@DATABASE
def verify(database: str | None) -> None:
    """Check every record of the chain; the first broken link, with exit status 1."""
    with opened(database) as server:
        if server.audit is not None:
            server.audit.flush()  # seal what is waiting, as a running server would
        verdict = verify_chain(server.store)
    waiting = f"; {verdict.unsealed} not yet sealed" if verdict.unsealed else ""
    if verdict.intact:
        click.echo(f"{verdict.records} records, chain intact{waiting}")
        click.echo(f"head {verdict.head}")
        return
    click.echo(f"chain broken at record {verdict.broken_at}: {verdict.problem}", err=True)
    click.echo(f"records 1 to {verdict.records} are intact{waiting}", err=True)
    raise SystemExit(1)


@audit.command("list")
@click.option("--patient", default=None, help="Records about this Patient (id).")
@click.option("--agent", default=None, help="Records of this user or client (Practitioner/x).")
@click.option("--since", default=None, help="Records from this date or time (2026-11-23).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@DATABASE
def list_(
    patient: str | None, agent: str | None, since: str | None, limit: int, database: str | None
) -> None:
    """The latest audit records, newest first (this reading is itself audited)."""
    query = [("_count", str(min(limit, 1000)))]
    for name, value in (("patient", patient), ("agent", agent), ("date", since and f"ge{since}")):
        if value:
            query.append((name, value))
    shown = 0
    with opened(database) as server:
        while shown < limit:
            response = server.router.handle(FhirRequest("GET", "AuditEvent", query=query))
            bundle = response.resource or {}
            if response.status >= 400:
                issues = bundle.get("issue") or [{}]
                raise click.ClickException(str(issues[-1].get("diagnostics", response.status)))
            for entry in bundle.get("entry", [])[: limit - shown]:
                click.echo(_line(entry["resource"]))
                shown += 1
            after = [x["url"] for x in bundle.get("link", []) if x["relation"] == "next"]
            if not after:
                break
            cursor = after[0].rsplit("_cursor=", 1)[-1]
            query = [*(q for q in query if q[0] != "_cursor"), ("_cursor", cursor)]


def _line(event: dict[str, Any]) -> str:
    user: dict[str, Any] = next((a for a in event.get("agent", []) if a.get("requestor")), {})
    who = user.get("who", {})
    name = who.get("reference") or who.get("identifier", {}).get("value") or "-"
    role = next((c["coding"][0]["code"] for c in user.get("role", [])), "-")
    facility = next(
        (
            a["who"].get("reference", "").removeprefix("Organization/")
            for a in event.get("agent", [])
            if a.get("type", {}).get("coding", [{}])[0].get("code") == "PROV"
        ),
        "-",
    )
    patient = next(
        (
            e["what"]["reference"]
            for e in event.get("entity", [])
            if e.get("role", {}).get("code") == "1" and "what" in e
        ),
        "-",
    )
    purpose = next((c["coding"][0]["code"] for c in event.get("purposeOfEvent", [])), "-")
    flagged = any(t.get("code") == codes.BREAK_GLASS for t in event.get("meta", {}).get("tag", []))
    subtypes = {c.get("system"): c.get("code") for c in event.get("subtype", [])}
    kind = subtypes.get(codes.SECURITY_EVENT) or subtypes.get(codes.RESTFUL_INTERACTION) or "?"
    if codes.OPERATION in subtypes:
        kind += f" ${subtypes[codes.OPERATION]}"
    return "  ".join(
        [
            event.get("recorded", "?")[:23],
            f"{kind:<14}",
            f"outcome={event.get('outcome', '?')}",
            name,
            role,
            facility,
            patient,
            purpose,
            "BREAK-THE-GLASS" if flagged else "",
        ]
    ).rstrip()
