"""create_app(settings): the one place where vnehr's concrete parts are wired together."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from vnehr.fhir.validation import validate
from vnehr.interactions.context import Context
from vnehr.router import Router
from vnehr.search.extract import Extractor
from vnehr.search.registry import default_registry
from vnehr.settings import Settings
from vnehr.storage import open_store
from vnehr.storage.base import Store


@dataclass(frozen=True, slots=True)
class Server:
    """A wired vnehr: settings, store and router (no HTTP)."""

    settings: Settings
    store: Store
    router: Router

    def close(self) -> None:
        self.store.close()


def create_server(settings: Settings) -> Server:
    registry = default_registry()
    extractor = Extractor(registry)
    store = open_store(settings, extractor.extract)
    ctx = Context(store=store, settings=settings, registry=registry, validator=validate)
    return Server(settings, store, Router(ctx))


def create_app(settings: Settings) -> FastAPI:
    """The ASGI application serving the FHIR API under /fhir."""
    from vnehr.http.asgi import build_asgi

    return build_asgi(create_server(settings))
