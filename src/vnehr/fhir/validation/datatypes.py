"""Checks particular to some data types: https://hl7.org/fhir/R4/datatypes.html

Run by the walker after the generic checks of a value of that type:

- Reference: the URL is well formed (`Type/id`, `#local`, `urn:uuid:`, absolute) and names a
  known resource type that the element allows (https://hl7.org/fhir/R4/references.html).
- Coding: the system is absolute and not a value set; the code exists when the system is one
  the specification defines in full; the code is in the value set of a required binding.
- CodeableConcept: one of the codings is in the value set of a required binding.
- Extension: a value or nested extensions, not both (ext-1); an unversioned URL; the value type
  allowed by the definition, for the extensions the specification defines.
- Attachment: the stated size matches the data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

from vnehr.errors import Issue
from vnehr.fhir import definitions
from vnehr.fhir.validation.model import ElementSpec, type_specs
from vnehr.fhir.validation.primitives import base64_size, checks
from vnehr.fhir.validation.scope import Scope, error, warning

_RELATIVE = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?")
_CONDITIONAL = re.compile(r"([A-Z][A-Za-z]+)\?.*", re.DOTALL)
_RESTFUL_TAIL = re.compile(
    r"/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?$"
)
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")
CORE_SYSTEMS = "http://hl7.org/fhir/"

Hook = Callable[[dict[str, Any], ElementSpec, str, list[Issue], Scope], None]


def is_absolute(url: str) -> bool:
    """Whether a URI is absolute (has a scheme): `urn:uuid:...`, `http://...`."""
    return _ABSOLUTE.fullmatch(url) is not None


_REFERENCE_TYPES: dict[str, tuple[str | None, str | None]] = {}  # reference_type, remembered
MAX_REFERENCE_TYPES = 4096


def reference_type(ref: str) -> tuple[str | None, str | None]:
    """(resource type named by a reference URL or None, the problem with it or None)."""
    if ref.startswith(("#", "urn:")):
        return None, None
    found = _REFERENCE_TYPES.get(ref)
    if found is None:
        if len(_REFERENCE_TYPES) >= MAX_REFERENCE_TYPES:
            _REFERENCE_TYPES.clear()
        found = _REFERENCE_TYPES[ref] = _reference_type(ref)
    return found


def _reference_type(ref: str) -> tuple[str | None, str | None]:
    m = _RELATIVE.fullmatch(ref) or _CONDITIONAL.fullmatch(ref)
    if m is not None:
        rtype = m.group(1)
        if rtype not in definitions.resource_types():
            return None, f"Unknown resource type {rtype!r} in the reference {ref!r}"
        return rtype, None
    if _ABSOLUTE.fullmatch(ref):
        tail = _RESTFUL_TAIL.search(ref)
        if tail is not None and tail.group(1) in definitions.resource_types():
            return tail.group(1), None
        return None, None
    return None, f"Relative references must be of the form Type/id, found {ref!r}"


def check_reference(
    value: dict[str, Any], el: ElementSpec, loc: str, out: list[Issue], scope: Scope
) -> None:
    ref = value.get("reference")
    rtype: str | None = None
    if type(ref) is str and ref:
        if ref[0] == "#":
            scope.local_ref(ref, f"{loc}.reference", True)
        else:
            rtype, problem = reference_type(ref)
            if problem is not None:
                error(out, "value", problem, f"{loc}.reference")
    declared = value.get("type")
    if type(declared) is str and declared and ":" not in declared:
        if declared not in definitions.resource_types():
            error(out, "value", f"Unknown resource type {declared!r}", f"{loc}.type")
        elif rtype is not None and declared != rtype:
            error(
                out,
                "value",
                f"The reference names a {rtype} but its type says {declared}",
                f"{loc}.type",
            )
        rtype = rtype or declared
    targets = el.targets
    if rtype is not None and targets is not None and rtype not in targets:
        error(
            out,
            "structure",
            f"A reference to a {rtype} is not allowed here (allowed: {', '.join(sorted(targets))})",
            loc,
        )


def _in_system(code: str, system: str) -> bool | None:
    known = definitions.code_systems().get(system)
    if known is None:
        return None
    codes, case_insensitive = known
    return (code.lower() if case_insensitive else code) in codes


def check_coding(
    value: dict[str, Any], el: ElementSpec, loc: str, out: list[Issue], scope: Scope
) -> None:
    system, code = value.get("system"), value.get("code")
    if type(system) is str and system:
        if not _ABSOLUTE.fullmatch(system):
            error(out, "value", f"Coding.system must be an absolute URI, not {system!r}", loc)
        elif system.startswith("http://hl7.org/fhir/ValueSet/"):
            error(out, "value", "Coding.system names a value set, not a code system", loc)
        elif type(code) is str and code and _in_system(code, system) is False:
            message = f"Unknown code {code!r} in the code system {system}"
            # Codes of FHIR's own systems are fixed with R4; THO and others gain codes later.
            if system.startswith(CORE_SYSTEMS):
                error(out, "code-invalid", message, f"{loc}.code")
            else:
                warning(out, "code-invalid", message, f"{loc}.code")
    allowed = el.system_codes
    if allowed is not None and type(code) is str and code:
        if type(system) is str:
            ok = code in allowed.get(system, ())
        else:
            ok = any(code in codes for codes in allowed.values())
        if not ok:
            error(
                out,
                "code-invalid",
                f"The code {system}#{code} is not in the required value set {el.binding}",
                loc,
            )


def check_codeable_concept(
    value: dict[str, Any], el: ElementSpec, loc: str, out: list[Issue], scope: Scope
) -> None:
    allowed = el.system_codes
    if allowed is None:
        return
    codings = value.get("coding")
    if type(codings) is not list or not codings:
        error(out, "code-invalid", f"A code is required from the value set {el.binding}", loc)
        return
    for c in codings:
        if type(c) is not dict:
            continue
        system, code = c.get("system"), c.get("code")
        if type(system) is str and type(code) is str and code in allowed.get(system, ()):
            return
    error(
        out,
        "code-invalid",
        f"None of the codings is in the required value set {el.binding}",
        loc,
    )


@cache
def _extension_value_keys() -> dict[str, str]:
    """JSON name -> type of every value[x] of Extension (`valueString` -> `string`)."""
    return {
        key: el.type_code
        for key, el in type_specs()["Extension"].elements.items()
        if el.choice == "value"
    }


def check_extension(
    value: dict[str, Any], el: ElementSpec, loc: str, out: list[Issue], scope: Scope
) -> None:
    value_keys = _extension_value_keys()
    found = [k for k in value if k in value_keys]
    nested = "extension" in value
    if found and nested:
        error(out, "invariant", "ext-1: an extension has a value or extensions, not both", loc)
    elif not found and not nested:
        error(out, "invariant", "ext-1: an extension must have a value or extensions", loc)
    url = value.get("url")
    if type(url) is not str:
        return
    if "|" in url:
        error(out, "value", "An extension URL must not contain a version", f"{loc}.url")
        return
    allowed = definitions.extension_definitions().get(url)
    if allowed is None:
        return
    if allowed == "complex":
        if found:
            error(out, "structure", f"The extension {url} has no value[x], only extensions", loc)
    elif found and value_keys[found[0]] not in allowed:
        error(
            out,
            "structure",
            f"The extension {url} allows values of type {', '.join(allowed)}, "
            f"not {value_keys[found[0]]}",
            f"{loc}.{found[0]}",
        )


def check_attachment(
    value: dict[str, Any], el: ElementSpec, loc: str, out: list[Issue], scope: Scope
) -> None:
    data, size = value.get("data"), value.get("size")
    if type(data) is str and type(size) is int and checks()["base64Binary"](data) is None:
        actual = base64_size(data)
        if actual != size:
            error(
                out,
                "value",
                f"The stated size {size} does not match the size of the data ({actual})",
                loc,
            )


DATATYPE_HOOKS: dict[str, Hook] = {
    "Reference": check_reference,
    "Coding": check_coding,
    "CodeableConcept": check_codeable_concept,
    "Extension": check_extension,
    "Attachment": check_attachment,
}
