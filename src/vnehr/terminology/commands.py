"""`vnehr terminology ...`: load code systems and catalogues, list unmapped local codes.

vnehr terminology load loinc Loinc.csv --version 2.78
vnehr terminology load icd10 icd10-byt.xlsx
vnehr terminology load catalogue danh-muc-xet-nghiem.xlsx
vnehr terminology load fhir codesystem.json conceptmap.json
vnehr terminology defaults            # the content shipped with vnehr
vnehr terminology unmapped [--facility F]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from vnehr.errors import FhirError
from vnehr.terminology.model import CodeSystemContent, Json

_DATABASE = click.option("--database", default=None, help="Database URL (or VNEHR_DATABASE_URL).")
KINDS = ("loinc", "icd10", "catalogue", "fhir")


def _server(database: str | None) -> Any:
    from vnehr.app import create_server
    from vnehr.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(database_url=database)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    return create_server(settings)


@click.group()
def terminology() -> None:
    """Code systems, value sets and maps (docs/terminology.md)."""


def read_source(
    kind: str, path: Path, version: str | None, url: str | None
) -> tuple[CodeSystemContent, list[Json]]:
    """The content of a published file of `kind`, and the resources that come with it."""
    if kind == "loinc":
        from vnehr.terminology.sources.loinc import read_loinc

        return read_loinc(path, version=version), []
    if kind == "icd10":
        from vnehr.terminology.sources.icd10 import read_icd10

        return read_icd10(path, version=version), []
    if kind == "catalogue":
        from vnehr.terminology.sources.catalogue import read_catalogue

        catalogue = read_catalogue(path, url=url, version=version)
        return catalogue.code_system, [*catalogue.value_sets, catalogue.concept_map]
    raise click.BadParameter(f"unknown kind {kind!r}", param_hint="KIND")


def load_defaults(server: Any, url: str | None = None, echo: bool = True) -> list[str]:
    """Load the content shipped with vnehr: the LOINC subset, the ICD-10 demo subset with
    Vietnamese displays, and the sample national lab catalogue."""
    from vnehr.terminology.loading import load_code_system
    from vnehr.terminology.sources import shipped

    lines = []
    for content, others in shipped(url or server.settings.lab_catalogue_url):
        loaded = load_code_system(server.store, content, others=others)
        line = f"{loaded.code_system}: {loaded.url} {loaded.version} ({loaded.concepts} concepts)"
        if loaded.resources:
            line += f" + {', '.join(loaded.resources)}"
        lines.append(line)
        if echo:
            click.echo(line)
    return lines


@terminology.command("load")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--version", default=None, help="The code system's version.")
@click.option("--url", default=None, help="Canonical URL (catalogue: VNEHR_LAB_CATALOGUE_URL).")
@_DATABASE
def load(
    kind: str, files: tuple[Path, ...], version: str | None, url: str | None, database: str | None
) -> None:
    """Load code systems: KIND is loinc (Loinc.csv), icd10 (the Ministry's list as CSV/Excel,
    or vnehr's CSV), catalogue (the national lab catalogue as CSV/Excel or FHIR JSON), fhir
    (CodeSystem, ValueSet, ConceptMap resources as JSON, a Bundle of them, or NDJSON)."""
    from vnehr.terminology.loading import load_code_system

    server = _server(database)
    try:
        if kind == "fhir":
            _load_fhir(server, files)
            return
        for path in files:
            try:
                content, others = read_source(
                    kind,
                    path,
                    version,
                    url or server.settings.lab_catalogue_url if kind == "catalogue" else url,
                )
                total = 0
                with click.progressbar(
                    length=0, label=f"{path.name}", file=sys.stderr, show_pos=True
                ) as bar:

                    def progress(n: int) -> None:
                        nonlocal total
                        bar.length = max(n, 1)
                        bar.update(n - total)
                        total = n

                    loaded = load_code_system(
                        server.store, content, others=others, progress=progress
                    )
            except (FhirError, ValueError) as exc:
                raise click.ClickException(f"{path}: {exc} (nothing was changed)") from None
            click.echo(
                f"{loaded.code_system}: {loaded.url} {loaded.version} "
                f"({loaded.concepts} concepts)"
                + (f" + {', '.join(loaded.resources)}" if loaded.resources else "")
            )
    finally:
        server.close()


def _load_fhir(server: Any, files: tuple[Path, ...]) -> None:
    from vnehr.interactions.exchange import FhirRequest

    resources: list[Json] = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        try:
            if path.suffix == ".ndjson":
                items = [json.loads(line) for line in text.splitlines() if line.strip()]
            else:
                one = json.loads(text)
                items = (
                    [e.get("resource") for e in one.get("entry") or []]
                    if one.get("resourceType") == "Bundle"
                    else [one]
                )
        except (json.JSONDecodeError, AttributeError) as exc:
            raise click.ClickException(f"{path}: not FHIR JSON ({exc})") from None
        resources += [r for r in items if isinstance(r, dict)]
    entries = []
    for r in resources:
        if r.get("resourceType") not in ("CodeSystem", "ValueSet", "ConceptMap", "NamingSystem"):
            raise click.ClickException(f"{r.get('resourceType')} is not a terminology resource")
        method, url = (
            ("PUT", f"{r['resourceType']}/{r['id']}")
            if r.get("id")
            else ("POST", str(r["resourceType"]))
        )
        entries.append({"resource": r, "request": {"method": method, "url": url}})
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    response = server.router.handle(
        FhirRequest(method="POST", path="", resource=bundle, base_url="")
    )
    if response.status >= 400:
        issue = (response.resource or {}).get("issue", [{}])[0]
        raise click.ClickException(
            f"{issue.get('diagnostics')} at {issue.get('expression')} (nothing was changed)"
        )
    for entry in (response.resource or {}).get("entry", []):
        click.echo(f"{entry['response']['status']} {entry['response'].get('location', '')}")


@terminology.command("defaults")
@_DATABASE
def defaults(database: str | None) -> None:
    """Load the terminology shipped with vnehr (LOINC subset, ICD-10 demo subset with
    Vietnamese names, the sample national lab catalogue)."""
    server = _server(database)
    try:
        load_defaults(server)
    finally:
        server.close()


@terminology.command("unmapped")
@click.option("--facility", default=None, help="Only codes sent by this facility.")
@click.option("--system", default=None, help="Only codes of this local code system.")
@_DATABASE
def unmapped_command(facility: str | None, system: str | None, database: str | None) -> None:
    """Local codes that arrived without a map to a national code (tab-separated)."""
    from vnehr.terminology.local_codes import unmapped

    server = _server(database)
    try:
        rows = unmapped(server.store.rows, facility=facility, system=system)
    finally:
        server.close()
    click.echo("seen\tfacility\tsystem\tcode\tdisplay")
    for row in rows:
        click.echo(
            f"{row['seen']}\t{row['facility'] or ''}\t{row['system']}\t{row['code']}\t"
            f"{row['display'] or ''}"
        )
