"""Rules for canonical resources: https://hl7.org/fhir/R4/resource.html#canonical

The `url` of a canonical resource (CodeSystem, ValueSet, StructureDefinition, ...) is an
absolute URI, and so is every code system a ValueSet includes or excludes (a contained code
system is named by its canonical URL, not by `#id`).
"""

from __future__ import annotations

from typing import Any

from vnehr.errors import Issue
from vnehr.fhir.validation.datatypes import is_absolute
from vnehr.fhir.validation.scope import error


def check_canonical_url(resource: dict[str, Any], loc: str, out: list[Issue]) -> None:
    url = resource.get("url")
    if type(url) is str and url and not url.startswith("#") and not is_absolute(url):
        error(out, "invalid", f"Canonical URLs must be absolute, not {url!r}", f"{loc}.url")


def check_value_set(value_set: dict[str, Any], loc: str, out: list[Issue]) -> None:
    check_canonical_url(value_set, loc, out)
    compose = value_set.get("compose")
    if type(compose) is not dict:
        return
    for part in ("include", "exclude"):
        items = compose.get(part)
        for i, item in enumerate(items if type(items) is list else []):
            system = item.get("system") if type(item) is dict else None
            if type(system) is str and system and not is_absolute(system):
                error(
                    out,
                    "invalid",
                    f"ValueSet.compose.{part}.system must be an absolute URI, not {system!r}",
                    f"{loc}.compose.{part}[{i}].system",
                )
