"""create_app(settings): the one place where vnehr's concrete parts are wired together."""

from __future__ import annotations

from dataclasses import dataclass

import yaml
from fastapi import FastAPI

from vnehr.audit.trail import AuditTrail
from vnehr.auth.activation import patients_with_cccd, person_of_patient
from vnehr.auth.server import AuthorizationServer, check_serving
from vnehr.checks import check
from vnehr.identity.index import PatientIndex
from vnehr.interactions.context import Context
from vnehr.policy.labels import load_rules
from vnehr.policy.rules import AccessRules
from vnehr.router import Router
from vnehr.search.custom import CommitHook, CustomParameters, TrackedStore
from vnehr.search.extract import Extractor
from vnehr.search.registry import r4_registry
from vnehr.settings import Settings, SettingsError
from vnehr.storage import open_store
from vnehr.storage.base import Store
from vnehr.terminology.hook import TerminologyIndex
from vnehr.terminology.local_codes import UnmappedCodes
from vnehr.terminology.service import Terminology


@dataclass(frozen=True, slots=True)
class Server:
    """A wired vnehr: settings, store and router (no HTTP); the custom search parameters."""

    settings: Settings
    store: Store
    router: Router
    search_parameters: CustomParameters
    identity: PatientIndex | None
    auth: AuthorizationServer
    audit: AuditTrail | None = None

    def close(self) -> None:
        if self.audit is not None:
            self.audit.close()  # writes the read events still queued
        self.store.close()


def create_server(settings: Settings) -> Server:
    # The server's own registry: custom SearchParameters change it (search/custom.py), and
    # another server in the same process must not see them. The extractor indexing writes
    # and the router's searches share it.
    registry = r4_registry()
    extractor = Extractor(registry)
    inner = open_store(settings, extractor.extract)
    params = CustomParameters(registry, inner)
    try:
        params.refresh()  # the SearchParameters already stored
    except BaseException:
        inner.close()
        raise
    # The master patient index follows every Patient write, in the writing transaction.
    identity = PatientIndex() if settings.mpi else None
    # The terminology tables follow CodeSystem and ConceptMap writes, in the same way.
    hooks: list[CommitHook] = [TerminologyIndex(), *([identity] if identity else [])]
    # The access rules (vnehr.policy) follow encounters, referrals, consents, guardians.
    hooks.append(AccessRules(settings))
    try:  # a bad labelling file stops the start, not the first write
        load_rules(settings.access_labels)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        inner.close()
        raise SettingsError(f"VNEHR_ACCESS_LABELS: {exc}") from None
    national = (settings.lab_catalogue_url,)
    if settings.map_local_codes:  # local codes that arrive without a national one
        hooks.append(UnmappedCodes(national))
    store = TrackedStore(inner, params, hooks=hooks)
    terminology = Terminology(
        store, registry, national=national, map_local_codes=settings.map_local_codes
    )
    store.hooks.append(terminology)  # forgets the value sets it cached when one is written
    try:
        auth = AuthorizationServer.from_settings(
            settings,
            store,
            find_patients=patients_with_cccd(store, registry),
            person_of=person_of_patient(store, identity) if identity else None,
        )
    except BaseException:
        store.close()
        raise
    # The audit trail (vnehr.audit): the last commit hook records every write in its own
    # transaction; security events are recorded with their auth_events row.
    audit = AuditTrail(inner, registry, settings) if settings.audit else None
    if audit is not None:
        store.hooks.append(audit)
        auth.service.events.audit = audit.security
        auth.activation.events.audit = audit.security
    ctx = Context(
        store=store,
        settings=settings,
        registry=registry,
        validator=check,
        identity=identity,
        terminology=terminology,
        denied=auth.denied,
        audit=audit,
    )
    return Server(settings, store, Router(ctx), params, identity, auth, audit)


def create_app(settings: Settings) -> FastAPI:
    """The ASGI application serving the FHIR API under /fhir."""
    from vnehr.http.asgi import build_asgi

    check_serving(settings)
    return build_asgi(create_server(settings))
