"""Content negotiation: JSON only; XML is refused clearly (https://hl7.org/fhir/R4/http.html#mime-type)."""

from __future__ import annotations

from vnehr.errors import NotAcceptable

JSON_FORMATS = {"json", "application/json", "application/fhir+json", "application/json+fhir"}
XML_FORMATS = {"xml", "text/xml", "application/xml", "application/fhir+xml", "application/xml+fhir"}


def check_format(format_param: str | None, accept: str | None) -> None:
    """Raise NotAcceptable (406) when the client can only take a format we do not write."""
    if format_param is not None:
        fmt = format_param.split(";")[0].strip().lower()
        if fmt in JSON_FORMATS:
            return
        raise NotAcceptable(
            f"_format={format_param} is not supported: vnehr answers application/fhir+json only"
        )
    if not accept:
        return
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if any(k in JSON_FORMATS or k in ("*/*", "application/*") for k in kinds):
        return
    if any(k in XML_FORMATS for k in kinds):
        raise NotAcceptable(
            f"Accept: {accept} is not supported: vnehr answers application/fhir+json only"
        )
