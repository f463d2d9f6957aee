"""Token parameter values -> idx_token rows (https://hl7.org/fhir/R4/search.html#token).

Coding: (system, code, folded display). CodeableConcept: each coding, and its text as a row
of its own with only the folded text (what `:text` searches). Identifier: (system, value,
folded type.text), and per type coding a row of `<code>:of-type` (type system, "type
code|value") for the `:of-type` modifier. ContactPoint: (system, value), so `phone|0912...`
matches. code, id, string, uri and boolean primitives: the code alone.
"""

from __future__ import annotations

from typing import Any

from vnehr.search.extract.repeats import unique_tail
from vnehr.search.extract.string import FOLDED, folded
from vnehr.search.index_rows import IndexRows, TokenRow

# What add_rows returns when two of the rows it added may be equal: the bit of its list.
REPEATS = 1

# ContactPoint.system (https://hl7.org/fhir/R4/valueset-contact-point-system.html): an
# Identifier.system is a URI, never one of these.
_CONTACT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})


def add_rows(code: str, values: Any, rows: IndexRows) -> int:
    """Rows of `values`: a list of values, or one value as found in the resource.

    REPEATS if two of the rows added may be equal (the Extractor then removes the repeats),
    else 0.
    """
    if type(values) is list:
        if len(values) != 1:
            out = rows.tokens
            start = len(out)
            for value in values:
                if type(value) is not list:
                    add_rows(code, value, rows)
            return unique_tail(out, start, REPEATS)
        values = values[0]
    kind = type(values)
    if kind is str:
        rows.tokens.append((code, None, values, None))
    elif kind is dict:
        codings = values.get("coding")
        if codings is not None or (
            "text" in values and "value" not in values and "code" not in values
        ):
            # A CodeableConcept: its codings, then its text.
            out = rows.tokens
            start = len(out)
            bare = False  # a coding of display only, whose row the text's may repeat
            if type(codings) is list:
                for coding in codings:
                    if type(coding) is not dict:
                        continue
                    get = coding.get
                    system, token, display = get("system"), get("code"), get("display")
                    if type(display) is str and display:
                        display = FOLDED.get(display) or folded(display)
                        if system is None and token is None:
                            bare = True
                    elif system is None and token is None:
                        continue
                    else:
                        display = None
                    out.append((code, system, token, display))
            text = values.get("text")
            if type(text) is str and text:
                out.append((code, None, None, FOLDED.get(text) or folded(text)))
            # Two rows (so `codings` is a list) are different unless two codings are alike
            # or the text repeats a coding of display only.
            if len(out) - start > 1 and (bare or len(codings) > 1):
                return unique_tail(out, start, REPEATS)
        elif "value" in values:
            _identifier(code, values, rows.tokens)
        else:
            _coding(code, values, rows.tokens)
    elif kind is bool:
        rows.tokens.append((code, None, "true" if values else "false", None))
    elif isinstance(values, int | float):  # integer-valued tokens, e.g. Group value as is
        rows.tokens.append((code, None, str(values), None))
    return 0


def _identifier(code: str, value: dict[str, Any], out: list[TokenRow]) -> None:
    """An Identifier or a ContactPoint."""
    system, token = value.get("system"), value.get("value")
    if type(token) is not str:
        return
    if system in _CONTACT_SYSTEMS:
        out.append((code, system, token, None))
        return
    id_type = value.get("type")
    if type(id_type) is not dict:
        out.append((code, system, token, None))
        return
    text = id_type.get("text")
    out.append((code, system, token, folded(text) if type(text) is str and text else None))
    codings = id_type.get("coding")
    if type(codings) is list:
        # `:of-type` (system|code|value of the identifier's type and its value): a row of
        # the parameter `<code>:of-type`, its code being "type code|value".
        of_type = f"{code}:of-type"
        for coding in codings:
            if type(coding) is dict and type(coding.get("code")) is str:
                out.append((of_type, coding.get("system"), f"{coding['code']}|{token}", None))


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
