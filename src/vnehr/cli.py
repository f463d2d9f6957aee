"""The `vnehr` command line: serve, migrate, load, demo, reindex (documented in docs/cli.md)."""

from __future__ import annotations

import logging
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import click

from vnehr.settings import Settings, SettingsError

DEV_BANNER = """
##############################################################################
#  DEVELOPMENT MODE: NO AUTHENTICATION.                                      #
#  Anyone who can reach this server can read and change every record.       #
#  Use only with synthetic data. Never with real patients.                  #
##############################################################################
"""


def _settings(database: str | None, **overrides: Any) -> Settings:
    try:
        return Settings.from_env(database_url=database, **overrides)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


@click.group()
@click.version_option(package_name="vnehr")
def main() -> None:
    """vnehr: FHIR R4 server and national EHR services."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@main.command()
@click.option("--host", default=None, help="Interface to listen on [127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [8080].")
@click.option("--database", default=None, help="Database URL (or VNEHR_DATABASE_URL).")
@click.option("--dev", is_flag=True, default=False, help="Development mode: NO authentication.")
@click.option(
    "--demo-if-empty", is_flag=True, default=False, help="Load demo data if the store is empty."
)
@click.option("--workers", type=int, default=1, help="Worker processes [1].")
def serve(
    host: str | None,
    port: int | None,
    database: str | None,
    dev: bool,
    demo_if_empty: bool,
    workers: int,
) -> None:
    """Serve the FHIR API on http://HOST:PORT/fhir."""
    import uvicorn

    settings = _settings(database, host=host, port=port, dev=True if dev else None)
    if settings.dev:
        click.secho(DEV_BANNER, fg="red", bold=True, err=True)
        if not settings.auth_keys:
            settings = settings.with_(auth_keys=_throwaway_keys())
    from vnehr.app import create_server
    from vnehr.auth.server import check_serving

    try:
        check_serving(settings)
        server = create_server(settings)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    if demo_if_empty and server.store.count() == 0:
        click.echo("The store is empty: loading demo data (vnehr demo --patients 200)...", err=True)
        _load_terminology(server)
        _load_demo(server, patients=200, seed=1)
    server.close()
    # Worker processes build their settings from the environment: pass ours on.
    os.environ.update(
        VNEHR_DATABASE_URL=settings.database_url,
        VNEHR_DEV="1" if settings.dev else "0",
        VNEHR_AUTH_KEYS=settings.auth_keys,
        VNEHR_HOST=settings.host,
        VNEHR_PORT=str(settings.port),
    )
    click.echo(f"vnehr FHIR R4 at http://{settings.host}:{settings.port}/fhir", err=True)
    uvicorn.run(
        "vnehr.http.factory:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level="warning",
        env_file=None,
    )


def _throwaway_keys() -> str:
    """Development mode without VNEHR_AUTH_KEYS: a signing key for this run only, in a file
    every worker process reads (tokens must verify whichever worker answers)."""
    import tempfile

    from vnehr.auth.keys import SigningKeys

    path = Path(tempfile.mkdtemp(prefix="vnehr-dev-keys-")) / "keys.json"
    SigningKeys.generate().save(path)
    return str(path)


@main.command()
@click.option("--database", default=None, help="Database URL (or VNEHR_DATABASE_URL).")
def migrate(database: str | None) -> None:
    """Create or upgrade the database schema."""
    from vnehr.search.extract import Extractor
    from vnehr.search.registry import default_registry
    from vnehr.storage import open_store

    settings = _settings(database)
    store = open_store(settings, Extractor(default_registry()).extract, migrate=False)
    applied = store.migrate()
    store.close()
    click.echo(f"applied: {', '.join(applied)}" if applied else "schema is up to date")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--database", default=None, help="Database URL (or VNEHR_DATABASE_URL).")
@click.option("--batch", type=int, default=2000, help="Resources per database transaction.")
@click.option(
    "--workers", type=int, default=None, help="Processes preparing NDJSON [cores, at most 4]."
)
def load(files: tuple[str, ...], database: str | None, batch: int, workers: int | None) -> None:
    """Load Bundles (JSON) and NDJSON files; print a summary per resource type."""
    from vnehr.app import create_server
    from vnehr.loading import Loader, start_workers

    settings = _settings(database)
    executor = start_workers(workers)  # before the store opens: fork with no threads running
    server = create_server(settings)
    try:
        loader = Loader(server, batch=batch, executor=executor)
        for name in files:
            path = Path(name)
            with click.progressbar(
                length=path.stat().st_size, label=path.name, file=sys.stderr
            ) as bar:
                loader.load_file(path, progress=bar.update)
        _summary(loader.counts, loader.errors)
    finally:
        server.close()
        if executor is not None:
            executor.shutdown()
    if loader.errors:
        sys.exit(1)


@main.command()
@click.option("--patients", type=int, default=100, help="Number of citizens [100].")
@click.option("--seed", type=int, default=1, help="Random seed [1]: same seed, same data.")
@click.option("--database", default=None, help="Database URL (or VNEHR_DATABASE_URL).")
def demo(patients: int, seed: int, database: str | None) -> None:
    """Generate a synthetic Vietnamese population and load it."""
    from vnehr.app import create_server

    server = create_server(_settings(database))
    try:
        if server.store.count("CodeSystem") == 0:
            _load_terminology(server)
        counts, errors = _load_demo(server, patients=patients, seed=seed)
    finally:
        server.close()
    _summary(counts, errors)
    if errors:
        sys.exit(1)


@main.command()
@click.option("--database", default=None, help="Database URL (or VNEHR_DATABASE_URL).")
@click.option(
    "--type",
    "types",
    multiple=True,
    metavar="TYPE",
    help="Only resources of this type (repeatable) [every type].",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=1000,
    help="Resources per database transaction [1000].",
)
def reindex(database: str | None, types: tuple[str, ...], batch: int) -> None:
    """Recompute the search index of the stored resources with the current search parameters."""
    from vnehr.app import create_server
    from vnehr.fhir.definitions import resource_types

    unknown = [t for t in types if t not in resource_types()]
    if unknown:
        raise click.UsageError(f"Unknown resource type: {', '.join(unknown)}")
    selected = tuple(dict.fromkeys(types))
    server = create_server(_settings(database))
    try:
        custom = server.search_parameters.urls()
        click.echo(
            f"search parameters: R4 and {len(custom)} custom"
            + (f" ({', '.join(sorted(custom.values()))})" if custom else ""),
            err=True,
        )
        total = sum(server.store.count(t) for t in selected) if selected else server.store.count()
        counts: Counter[str] = Counter()
        with click.progressbar(length=total, label="reindexing", file=sys.stderr) as bar:
            for done in server.store.reindex(selected, batch=batch):
                counts.update(done)
                bar.update(sum(done.values()))
    finally:
        server.close()
    click.echo(f"reindexed {sum(counts.values())} resources")
    for res_type, n in sorted(counts.items()):
        click.echo(f"  {res_type:<28} {n:>8}")


@main.group()
def mpi() -> None:
    """The master patient index: review queue, links, merges (docs/identity.md)."""


def _mpi_call(
    database: str | None, method: str, path: str, query: list[tuple[str, str]], body: Any = None
) -> dict[str, Any]:
    from vnehr.app import create_server
    from vnehr.interactions.exchange import FhirRequest

    server = create_server(_settings(database))
    try:
        request = FhirRequest(method=method, path=path, query=query, resource=body)
        response = server.router.handle(request)
    finally:
        server.close()
    resource = response.resource or {}
    if response.status >= 400:
        issues = resource.get("issue") or [{}]
        raise click.ClickException(str(issues[-1].get("diagnostics", response.status)))
    return resource


def _references(**values: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    for name, value in values.items():
        if name in ("result", "actor"):
            parts.append({"name": name, "valueString": value})
        else:
            kind = "Patient" if name == "patient" else "Person"
            reference = value if "/" in value else f"{kind}/{value}"
            parts.append({"name": name, "valueReference": {"reference": reference}})
    return {"resourceType": "Parameters", "parameter": parts}


@mpi.command("review")
@click.option("--database", default=None, help="Database URL (or VNEHR_DATABASE_URL).")
@click.option("--count", type=click.IntRange(min=1, max=100), default=50, help="At most [50].")
def mpi_review(database: str | None, count: int) -> None:
    """List the probable matches waiting for review: patient, person, score, reason."""
    found = _mpi_call(
        database, "GET", "$mpi-links", [("result", "probable"), ("_count", str(count))]
    )
    items = found.get("parameter") or []
    for item in items:
        parts = {p["name"]: p for p in item["part"]}
        score = parts.get("score", {}).get("valueDecimal", "")
        reason = parts.get("reason", {}).get("valueString", "")
        click.echo(
            f"{parts['patient']['valueReference']['reference']}\t"
            f"{parts['person']['valueReference']['reference']}\t{score}\t{reason}"
        )
    click.echo(f"{len(items)} waiting for review", err=True)


def _decide(database: str | None, patient: str, person: str, result: str, actor: str) -> None:
    body = _references(patient=patient, person=person, result=result, actor=actor)
    outcome = _mpi_call(database, "POST", "$mpi-update-link", [], body)
    click.echo(outcome["issue"][0]["diagnostics"])


_ACTOR = click.option("--actor", default="cli", help="Who decides, for the history [cli].")
_DATABASE = click.option("--database", default=None, help="Database URL (or VNEHR_DATABASE_URL).")


@mpi.command("accept")
@click.argument("patient")
@click.argument("person")
@_DATABASE
@_ACTOR
def mpi_accept(patient: str, person: str, database: str | None, actor: str) -> None:
    """Link PATIENT to PERSON (accept a review item, or link by hand)."""
    _decide(database, patient, person, "certain", actor)


@mpi.command("reject")
@click.argument("patient")
@click.argument("person")
@_DATABASE
@_ACTOR
def mpi_reject(patient: str, person: str, database: str | None, actor: str) -> None:
    """PATIENT is not PERSON (reject a review item, or unlink a wrong link)."""
    _decide(database, patient, person, "no-match", actor)


@mpi.command("merge")
@click.argument("source")
@click.argument("target")
@_DATABASE
@_ACTOR
def mpi_merge(source: str, target: str, database: str | None, actor: str) -> None:
    """Merge Person SOURCE into Person TARGET (SOURCE is kept, inactive)."""
    body = _references(source=source, target=target, actor=actor)
    click.echo(
        _mpi_call(database, "POST", "Person/$mpi-merge", [], body)["issue"][0]["diagnostics"]
    )


@mpi.command("unmerge")
@click.argument("source")
@_DATABASE
@_ACTOR
def mpi_unmerge(source: str, database: str | None, actor: str) -> None:
    """Undo the last merge of Person SOURCE."""
    body = _references(source=source, actor=actor)
    outcome = _mpi_call(database, "POST", "Person/$mpi-unmerge", [], body)
    click.echo(outcome["issue"][0]["diagnostics"])


@mpi.command("rebuild")
@_DATABASE
@click.option("--batch", type=click.IntRange(min=1), default=500, help="Per transaction [500].")
def mpi_rebuild(database: str | None, batch: int) -> None:
    """(Re)index every stored Patient: for data loaded with the index off."""
    from vnehr.app import create_server

    server = create_server(_settings(database))
    try:
        if server.identity is None:
            raise click.ClickException("The master patient index is off (VNEHR_MPI=0)")
        total = server.store.count("Patient")
        done = 0
        with click.progressbar(length=total, label="indexing Patients", file=sys.stderr) as bar:
            for n in server.identity.rebuild(server.store, batch=batch):
                done += n
                bar.update(n)
        persons = server.store.count("Person")
    finally:
        server.close()
    click.echo(f"indexed {done} Patients; {persons} Persons")


def _load_terminology(server: Any) -> None:
    """The terminology vnehr ships: the sample lab catalogue, ICD-10, the LOINC subset."""
    from vnehr.terminology.commands import load_defaults

    for line in load_defaults(server, echo=False):
        click.echo(f"terminology: {line}", err=True)


def _load_demo(server: Any, *, patients: int, seed: int) -> tuple[Counter[str], list[str]]:
    from vnehr.demo import population
    from vnehr.loading import Loader

    loader = Loader(server)
    with click.progressbar(length=patients, label="demo patients", file=sys.stderr) as bar:
        for bundle in population(patients=patients, seed=seed):
            loader.load_bundle(bundle, origin="demo")
            bar.update(
                sum(
                    1
                    for e in bundle.get("entry", [])
                    if e.get("resource", {}).get("resourceType") == "Patient"
                )
            )
    return loader.counts, loader.errors


def _summary(counts: Counter[str], errors: list[str]) -> None:
    total = sum(counts.values())
    click.echo(f"loaded {total} resources")
    for res_type, n in sorted(counts.items()):
        click.echo(f"  {res_type:<28} {n:>8}")
    if errors:
        click.echo(f"{len(errors)} errors:", err=True)
        for error in errors[:100]:
            click.echo(f"  {error}", err=True)
        if len(errors) > 100:
            click.echo(f"  ... and {len(errors) - 100} more", err=True)


def _add_terminology() -> None:
    from vnehr.terminology.commands import terminology

    main.add_command(terminology)


_add_terminology()


def _add_auth() -> None:
    from vnehr.auth.commands import auth

    main.add_command(auth)


_add_auth()


def _add_audit() -> None:
    from vnehr.audit.commands import audit

    main.add_command(audit)


_add_audit()

if __name__ == "__main__":
    main()


def _add_access() -> None:
    from vnehr.policy.commands import access

    main.add_command(access)


_add_access()
