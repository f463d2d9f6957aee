"""Token parameter values -> idx_token rows (https://hl7.org/fhir/R4/search.html#token).

Coding: (system, code, folded display). CodeableConcept: each coding, and its text as a row
of its own with only the folded text (what `:text` searches). Identifier: (system, value,
folded type.text). ContactPoint: (system, value), so `phone|0912...` matches. code, id,
string, uri and boolean primitives: the code alone.
"""

from __future__ import annotations

from typing import Any

from vnehr.search.extract.string import FOLDED, folded
from vnehr.search.index_rows import IndexRows, TokenRow

# ContactPoint.system (https://hl7.org/fhir/R4/valueset-contact-point-system.html): an
# Identifier.system is a URI, never one of these.
_CONTACT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})


def add_rows(code: str, values: Any, rows: IndexRows) -> None:
    """Rows of `values`: a list of values, or one value as found in the resource."""
    out = rows.tokens
    for value in values if type(values) is list else (values,):
        kind = type(value)
        if kind is dict:
            codings = value.get("coding")
            if codings is not None or (
                "text" in value and "value" not in value and "code" not in value
            ):
                # A CodeableConcept: its codings, then its text.
                if type(codings) is list:
                    for coding in codings:
                        if type(coding) is dict:
                            _coding(code, coding, out)
                text = value.get("text")
                if type(text) is str and text:
                    out.append((code, None, None, FOLDED.get(text) or folded(text)))
            elif "value" in value:
                _identifier(code, value, out)
            else:
                _coding(code, value, out)
        elif kind is str:
            out.append((code, None, value, None))
        elif kind is bool:
            out.append((code, None, "true" if value else "false", None))
        elif isinstance(value, int | float):  # integer-valued tokens, e.g. Group value as is
            out.append((code, None, str(value), None))


def _identifier(code: str, value: dict[str, Any], out: list[TokenRow]) -> None:
    """An Identifier or a ContactPoint."""
    system, token = value.get("system"), value.get("value")
    if type(token) is not str:
        return
    if system in _CONTACT_SYSTEMS:
        out.append((code, system, token, None))
        return
    id_type = value.get("type")
    text = id_type.get("text") if type(id_type) is dict else None
    out.append((code, system, token, folded(text) if type(text) is str and text else None))


def _coding(code: str, coding: dict[str, Any], out: list[TokenRow]) -> None:
    get = coding.get
    system, token, display = get("system"), get("code"), get("display")
    if type(display) is str and display:
        display = FOLDED.get(display) or folded(display)
    elif system is None and token is None:
        return
    else:
        display = None
    out.append((code, system, token, display))
