"""`vnehr access`: the access rules (docs/access.md)."""

from __future__ import annotations

import click

from vnehr.auth.commands import opened


@click.group()
def access() -> None:
    """Access control: the rules derived from encounters, referrals, consents, guardians."""


@access.command("rebuild")
@click.option("--database", default=None, help="Database URL (or VNEHR_DATABASE_URL).")
@click.option(
    "--batch", type=click.IntRange(min=1), default=1000, help="Resources per transaction."
)
def rebuild(database: str | None, batch: int) -> None:
    """Recompute every rule from the stored resources (after loading data written before
    the rules existed, or after changing access_care_window_days); break-the-glass rules
    stay."""
    from vnehr.policy.rules import BREAK_GLASS, AccessRules

    with opened(database) as server:
        hook = AccessRules(server.settings)
        store = server.store
        done = 0
        for res_type in sorted(hook.types):
            after = ""
            while True:
                rows = store.rows(
                    "SELECT res_id FROM resources WHERE res_type = ? AND deleted = ? "
                    "AND res_id > ? ORDER BY res_id LIMIT ?",
                    [res_type, store.boolean(False), after, batch],
                )
                if not rows:
                    break
                ids = [str(r[0]) for r in rows]
                with store.inner.transaction() as txn:
                    for res_id in ids:
                        hook.write(txn, res_type, res_id, txn.read(res_type, res_id).resource())
                done += len(ids)
                after = ids[-1]
        with store.inner.transaction() as txn:  # rules of resources deleted since
            txn.run(
                "DELETE FROM access_rules WHERE effect <> ? AND NOT EXISTS "
                "(SELECT 1 FROM resources r WHERE r.deleted = ? AND "
                "access_rules.source = r.res_type || '/' || r.res_id)",
                [BREAK_GLASS, store.boolean(False)],
            )
        count = store.rows("SELECT COUNT(*) FROM access_rules")[0][0]
        click.echo(f"{done} resources read, {count} rules")


@access.command("rules")
@click.argument("patient")
@click.option("--database", default=None, help="Database URL (or VNEHR_DATABASE_URL).")
def rules(patient: str, database: str | None) -> None:
    """The rules in force or to come on PATIENT (a Patient id) and its person."""
    from vnehr.fhir.instant import format_instant, now_micros
    from vnehr.policy.persons import person_patients

    with opened(database) as server:
        ids = sorted(person_patients(server.store, [patient]))
        marks = ", ".join("?" for _ in ids)
        rows = server.store.rows(
            "SELECT patient_id, party, effect, label, start, until, source FROM access_rules "
            f"WHERE patient_id IN ({marks}) AND until > ? ORDER BY start",
            [*ids, now_micros()],
        )
        for p, party, effect, label, start, until, source in rows:
            click.echo(
                f"Patient/{p}\t{effect}\t{party}\t{label or '*'}\t"
                f"{format_instant(int(start))[:16]} .. {format_instant(int(until))[:16]}\t{source}"
            )
        if not rows:
            click.echo("no rules in force")
