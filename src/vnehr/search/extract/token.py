"""Token parameter values -> idx_token rows (https://hl7.org/fhir/R4/search.html#token).

Coding: (system, code, folded display). CodeableConcept: each coding, and its text as a row
of its own with only the folded text (what `:text` searches). Identifier: (system, value,
folded type.text). ContactPoint: (system, value), so `phone|0912...` matches. code, id,
string, uri and boolean primitives: the code alone.
"""

from __future__ import annotations

from typing import Any

from vnehr.search.extract.string import folded
from vnehr.search.index_rows import IndexRows, TokenRow

# ContactPoint.system (https://hl7.org/fhir/R4/valueset-contact-point-system.html): an
# Identifier.system is a URI, never one of these.
_CONTACT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})


def add_rows(code: str, values: list[Any], rows: IndexRows) -> None:
    out = rows.tokens
    for value in values:
        kind = type(value)
        if kind is str:
            out.append((code, None, value, None))
        elif kind is dict:
            _complex(code, value, out)
        elif kind is bool:
            out.append((code, None, "true" if value else "false", None))
        elif isinstance(value, int | float):  # integer-valued tokens, e.g. Group value as is
            out.append((code, None, str(value), None))


def _complex(code: str, value: dict[str, Any], out: list[TokenRow]) -> None:
    codings = value.get("coding")
    if codings is not None or ("text" in value and "value" not in value and "code" not in value):
        if type(codings) is list:
            for coding in codings:
                if type(coding) is dict:
                    _coding(code, coding, out)
        text = value.get("text")
        if type(text) is str and text:
            out.append((code, None, None, folded(text)))
        return
    if "value" in value:
        system, token = value.get("system"), value.get("value")
        if type(token) is not str:
            return
        if system in _CONTACT_SYSTEMS:
            out.append((code, system, token, None))
            return
        id_type = value.get("type")
        text = id_type.get("text") if type(id_type) is dict else None
        out.append((code, system, token, folded(text) if type(text) is str and text else None))
        return
    _coding(code, value, out)


def _coding(code: str, coding: dict[str, Any], out: list[TokenRow]) -> None:
    system, token, display = coding.get("system"), coding.get("code"), coding.get("display")
    display = folded(display) if type(display) is str and display else None
    if system is None and token is None and display is None:
        return
    out.append((code, system, token, display))
