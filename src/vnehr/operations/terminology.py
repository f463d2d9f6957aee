"""The FHIR terminology operations (https://hl7.org/fhir/R4/terminology-service.html):

`CodeSystem/$lookup`, `CodeSystem/$validate-code`, `CodeSystem/$subsumes`,
`ValueSet/$expand`, `ValueSet/$validate-code`, `ConceptMap/$translate`; each at type and
instance level, GET (query string) and POST (Parameters). Resources sent as `tx-resource`
parameters are used for that request only. See docs/terminology.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from vnehr.errors import FhirError, Gone, InvalidRequest, NotFound
from vnehr.fhir.instant import format_instant, now_micros
from vnehr.interactions.context import Context
from vnehr.interactions.exchange import FhirRequest, FhirResponse
from vnehr.interactions.respond import body_resource
from vnehr.operations.parameters import OperationInput
from vnehr.operations.registry import Handler, Operation
from vnehr.terminology.code_systems import ConceptRow
from vnehr.terminology.expansion import (
    Evaluator,
    Member,
    Options,
    canonical_of,
    status_warnings,
    unknown_code_system,
)
from vnehr.terminology.issues import TxError, not_found
from vnehr.terminology.local_codes import unmapped
from vnehr.terminology.service import Session, Terminology
from vnehr.terminology.supplements import Supplements, requested
from vnehr.terminology.validation import Issue, Validator, answer, parse_languages

Json = dict[str, Any]
MAX_COUNT = 1000
BASE = "http://hl7.org/fhir/OperationDefinition"


def _service(ctx: Context) -> Terminology:
    if ctx.terminology is None:
        raise InvalidRequest("The terminology service is not enabled on this server")
    return ctx.terminology


@contextmanager
def _session(ctx: Context, inp: OperationInput) -> Iterator[Session]:
    transient = inp.resources("tx-resource")
    for i, res in enumerate(transient):
        if res.get("resourceType") not in ("CodeSystem", "ValueSet", "ConceptMap"):
            raise InvalidRequest(
                "tx-resource must be a CodeSystem, ValueSet or ConceptMap",
                (f"tx-resource[{i}]",),
            )
    with _service(ctx).session(transient) as session:
        yield session


def _versions(inp: OperationInput, name: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in inp.values(name):
        if isinstance(value, str) and "|" in value:
            url, _, version = value.partition("|")
            out[url] = version
    return out


def _options(inp: OperationInput) -> Options:
    return Options(
        text=inp.text("filter"),
        active_only=inp.boolean("activeOnly"),
        system_versions=_versions(inp, "system-version"),
        force_versions=_versions(inp, "force-system-version"),
        check_versions=_versions(inp, "check-system-version"),
    )


def _read(ctx: Context, res_type: str, res_id: str) -> Json:
    try:
        return ctx.store.read(res_type, res_id).resource()
    except Gone:
        raise NotFound(f"{res_type}/{res_id} has been deleted") from None


def _value_set(ctx: Context, session: Session, inp: OperationInput, res_id: str | None) -> Json:
    if res_id is not None:
        return _read(ctx, "ValueSet", res_id)
    inline = inp.resource("valueSet", "ValueSet")
    if inline is not None:
        return inline
    url = inp.text("url") or inp.text("context")
    if not url:
        raise InvalidRequest("Name the value set: url, or valueSet, or ValueSet/[id]", ("url",))
    version = inp.text("valueSetVersion")
    found = session.find_value_set(f"{url}|{version}" if version else url)
    if found is None:
        raise not_found(
            f"A definition for the value Set '{url}"
            + (f"|{version}" if version else "")
            + "' could not be found"
        )
    return found


def _supplements(session: Session, inp: OperationInput, vs: Json | None) -> Supplements | None:
    """The supplements asked for (useSupplement, the value set's extension); None: none."""
    wanted = requested(vs, inp.values("useSupplement"))
    return Supplements.resolve(session.systems, wanted) if wanted else None


# -- $expand
def expand(
    ctx: Context, request: FhirRequest, res_type: str | None, res_id: str | None
) -> FhirResponse:
    inp = OperationInput(request)
    count = inp.integer("count")
    offset = inp.integer("offset") or 0
    if count is not None:
        count = min(count, MAX_COUNT)
    with _session(ctx, inp) as session:
        vs = _value_set(ctx, session, inp, res_id)
        # the value set's own expansion parameters, where the request does not set them
        preset = {n: v for n, v in _compose_parameters(vs) if inp.value(n) is None}
        given = inp.text("displayLanguage") or preset.get("displayLanguage")
        if isinstance(given, str):  # a language list, as Accept-Language: its first choice
            language = next(iter(parse_languages(given)), None)
        else:
            language = _accept_language(request)
        designations = inp.boolean("includeDesignations")
        wanted = [str(v) for v in inp.values("designation") if isinstance(v, str)]
        supplements = _supplements(session, inp, vs)
        evaluator = session.evaluator(_options(inp))
        result = evaluator.expand(vs, offset, count)
        if supplements is not None:
            for m in result.members:
                if m.concept is not None:
                    m.concept = supplements.apply(m.concept)
        versions: dict[str, set[str]] = {}
        for m in result.members:
            versions.setdefault(m.system, set()).add(m.version)
        mixed = {url for url, seen in versions.items() if len(seen) > 1}
        cs_languages: dict[str, str | None] = {}

        def cs_language(member: Member) -> str | None:
            system = member.concept.system if member.concept is not None else None
            if system is None:
                return None
            if system.res_id not in cs_languages:
                found = session.header(system.res_id).get("language")
                cs_languages[system.res_id] = found if isinstance(found, str) else None
            return cs_languages[system.res_id]

        contains = [
            _contains(m, language, designations, m.system in mixed, cs_language(m), wanted)
            for m in result.members
        ]
        parameters: list[Json] = []
        for name in _ECHOED:
            for value in inp.values(name) or ([preset[name]] if name in preset else []):
                parameters.append(_echo(name, value))
        if inp.value("displayLanguage") is None and "displayLanguage" not in preset:
            # the language the displays were chosen for: the Accept-Language header, else
            # the value set's own language
            implied = request.header("accept-language") or vs.get("language")
            if isinstance(implied, str) and implied:
                parameters.append({"name": "displayLanguage", "valueCode": implied})
        parameters += [{"name": name, "valueUri": value} for name, value in evaluator.params]
        parameters += [
            {"name": "used-codesystem", "valueUri": canonical} for canonical in result.used.values()
        ]
        parameters += [
            {"name": "used-fragment", "valueUri": canonical}
            for canonical in result.used.values()
            if (found := evaluator.used_systems.get(canonical)) is not None
            and found.content == "fragment"
        ]
        parameters += [
            {"name": "used-valueset", "valueUri": canonical}
            for canonical in evaluator.used_value_sets
        ]
        if supplements is not None:
            parameters += [
                {"name": "used-supplement", "valueUri": canonical} for canonical in supplements.used
            ]
        parameters += [
            {"name": f"warning-{status}", "valueUri": canonical}
            for _, canonical, status in _status_warnings(session, evaluator, vs)
        ]
    out = {k: v for k, v in vs.items() if k not in _NOT_ECHOED}
    expansion: Json = {
        "identifier": f"urn:uuid:{uuid.uuid4()}",
        "timestamp": format_instant(now_micros()),
    }
    if result.total is not None:
        expansion["total"] = result.total
    if inp.value("offset") is not None:
        expansion["offset"] = offset
    if parameters:
        expansion["parameter"] = parameters
    if contains:
        expansion["contains"] = contains
    out["expansion"] = expansion
    return FhirResponse(200, resource=out)


def _status_warnings(
    session: Session, evaluator: Evaluator, vs: Json | None
) -> list[tuple[str, str, str]]:
    """(CodeSystem or ValueSet, canonical, status) of the code systems and value sets used that
    are withdrawn, deprecated, draft or experimental."""
    out: list[tuple[str, str, str]] = []
    for canonical, system in evaluator.used_systems.items():
        header = session.header(system.res_id)
        out += [("CodeSystem", canonical, s) for s in status_warnings(header)]
    value_sets = {canonical_of(vs): vs} if vs is not None else {}
    for canonical, used in {**value_sets, **evaluator.used_value_sets}.items():
        out += [("ValueSet", canonical, s) for s in status_warnings(used, standards_only=True)]
    return out


# Not part of an expansion's answer: the definition (compose) and bookkeeping.
_NOT_ECHOED = frozenset(
    {"expansion", "text", "meta", "compose", "date", "publisher", "description"}
)

_ECHOED = (
    "filter",
    "count",
    "offset",
    "activeOnly",
    "displayLanguage",
    "includeDesignations",
    "excludeNested",
    "excludeNotForUI",
    "excludePostCoordinated",
    "designation",
)

_ECHO_TYPES = {
    "count": "valueInteger",
    "offset": "valueInteger",
    "filter": "valueString",
    "designation": "valueString",
    "displayLanguage": "valueCode",
    "system-version": "valueUri",
    "force-system-version": "valueUri",
    "check-system-version": "valueUri",
}


EXT_EXPANSION_PARAMETER = "http://hl7.org/fhir/StructureDefinition/valueset-expansion-parameter"


def _compose_parameters(vs: Json) -> list[tuple[str, Any]]:
    """Expansion parameters the value set itself sets (valueset-expansion-parameter on
    compose): (name, value)."""
    compose = vs.get("compose") if isinstance(vs.get("compose"), dict) else {}
    out: list[tuple[str, Any]] = []
    for ext in (compose or {}).get("extension") or []:
        if not isinstance(ext, dict) or ext.get("url") != EXT_EXPANSION_PARAMETER:
            continue
        parts = {e.get("url"): e for e in ext.get("extension") or [] if isinstance(e, dict)}
        name = parts.get("name", {}).get("valueCode")
        value = next((v for k, v in parts.get("value", {}).items() if k.startswith("value")), None)
        if isinstance(name, str) and value is not None:
            out.append((name, value))
    return out


def _echo(name: str, value: Any) -> Json:
    kind = _ECHO_TYPES.get(name, "valueBoolean")
    if kind == "valueBoolean" and isinstance(value, str):
        value = value == "true"
    if kind == "valueInteger" and isinstance(value, str) and value.isdigit():
        value = int(value)
    return {"name": name, kind: value}


def _accept_language(request: FhirRequest) -> str | None:
    header = request.header("accept-language")
    if not header:
        return None
    first = header.split(",")[0].split(";")[0].strip()
    return first or None


def _display(
    member_display: str | None,
    concept: ConceptRow | None,
    language: str | None,
    cs_language: str | None = None,
) -> str | None:
    if language and concept is not None:
        lang = language.lower()
        if cs_language and cs_language.lower().split("-")[0] == lang.split("-")[0]:
            return member_display
        for d in concept.designations:
            dl = str(d.get("language") or "").lower()
            if dl and (dl == lang or dl.split("-")[0] == lang.split("-")[0]) and d.get("value"):
                return str(d["value"])
    return member_display


def _contains(
    member: Member,
    language: str | None,
    designations: bool,
    with_version: bool = False,
    cs_language: str | None = None,
    wanted: Sequence[str] = (),
) -> Json:
    item: Json = {}
    if member.status_extensions:
        item["extension"] = member.status_extensions
    item["system"] = member.system
    if with_version and member.version:
        item["version"] = member.version
    if member.abstract:
        item["abstract"] = True
    if member.inactive:
        item["inactive"] = True
    item["code"] = member.code
    display = _display(member.display, member.concept, language, cs_language)
    if display:
        item["display"] = display
    if designations and member.concept is not None:
        listed = member.concept.designations
        if display != member.display and member.display:
            # the display in another language: the code system's own display becomes a
            # designation, in place of the one shown
            shown = next((d for d in listed if d.get("value") == display), None)
            listed = [d for d in listed if d is not shown]
            own: Json = {
                "use": PREFERRED_FOR_LANGUAGE,
                "value": member.display,
            }
            if cs_language:
                own = {"language": cs_language, **own}
            listed = [own, *listed]
        chosen = [d for d in listed if _designation_wanted(d, wanted)]
        if chosen:
            item["designation"] = chosen
    return item


TERM_MAINT_INFRA = "http://terminology.hl7.org/CodeSystem/hl7TermMaintInfra"
PREFERRED_FOR_LANGUAGE = {
    "system": TERM_MAINT_INFRA,
    "code": "preferredForLanguage",
    "display": "Preferred For Language",
}


def _designation_wanted(designation: Json, wanted: Sequence[str]) -> bool:
    """Whether `designation` is one the `designation` parameters ask for (`system|code`: a
    language with urn:ietf:bcp:47, exactly, else a use); all are when none is asked for."""
    if not wanted:
        return True
    for token in wanted:
        system, _, code = token.rpartition("|")
        if system == BCP47:
            if str(designation.get("language") or "").lower() == code.lower():
                return True
        else:
            use = designation.get("use")
            if (
                isinstance(use, dict)
                and use.get("code") == code
                and (not system or use.get("system") == system)
            ):
                return True
    return False


BCP47 = "urn:ietf:bcp:47"


# -- the validate-code input
def _codings(inp: OperationInput, what: str) -> tuple[list[tuple[Json, str]], list[Json]]:
    """The codings to check with their location, and what to echo back."""
    cc = inp.object("codeableConcept")
    if cc is not None:
        codings = [c for c in cc.get("coding") or [] if isinstance(c, dict)]
        return (
            [(c, f"CodeableConcept.coding[{i}]") for i, c in enumerate(codings)],
            [{"name": "codeableConcept", "valueCodeableConcept": cc}],
        )
    coding = inp.object("coding")
    if coding is not None:
        return [(coding, "Coding")], []
    code = inp.text("code")
    if code is None:
        err = TxError(
            "Unable to find code to validate (looked for coding | codeableConcept | "
            "code+system | code+inferSystem in parameters"
        )
        err.tx_code = None
        raise err
    system = inp.text("system") if what == "ValueSet" else inp.text("url") or inp.text("system")
    version = inp.text("systemVersion") if what == "ValueSet" else inp.text("version")
    coding = {"code": code}
    if system:
        coding["system"] = system
    if version:
        coding["version"] = version
    if inp.text("display") is not None:
        coding["display"] = inp.text("display")
    return [(coding, "")], []


def validate_code(
    ctx: Context, request: FhirRequest, res_type: str | None, res_id: str | None
) -> FhirResponse:
    inp = OperationInput(request)
    options = _options(inp)
    what = "CodeSystem" if res_type == "CodeSystem" else "ValueSet"
    codings, echo = _codings(inp, what)
    cc = echo[0]["valueCodeableConcept"] if echo else None
    languages = parse_languages(inp.text("displayLanguage") or request.header("accept-language"))
    with _session(ctx, inp) as session:
        vs: Json | None = None
        vs_name: str | None = None
        if what == "ValueSet":
            vs = _value_set(ctx, session, inp, res_id)
            vs_name = _vs_name(vs)
        elif res_id is not None:
            stored = _read(ctx, "CodeSystem", res_id)
            for coding, _ in codings:
                coding.setdefault("system", stored.get("url"))
                if stored.get("version"):
                    coding.setdefault("version", stored["version"])
        supplements = _supplements(session, inp, vs)
        evaluator = session.evaluator(options)
        validator = Validator(
            evaluator,
            options,
            languages=languages,
            lenient=inp.boolean("lenient-display-validation"),
            infer_system=inp.boolean("inferSystem"),
            cs_language=lambda system: session.header(system.res_id).get("language"),
            is_value_set=lambda url: session.find_value_set(url) is not None,
            abstract_ok=inp.boolean("abstract", default=True),
            supplements=supplements,
        )
        outcomes = []
        for coding, base in codings:
            if what == "CodeSystem" and not coding.get("system"):
                raise InvalidRequest("Name the code system: url or system", ("url",))
            outcomes.append(validator.check(coding, base, vs, vs_name or "", cc is not None))
        for o in outcomes:
            if o.system and o.concept_found:
                found = evaluator.systems.resolve(o.system, o.version)
                if found is not None:
                    evaluator.used_systems.setdefault(found.canonical, found)
        notes = [
            Issue(
                "information",
                "business-rule",
                "status-check",
                f"Reference to {status} {kind} {canonical}",
                None,
                in_message=False,
            )
            for kind, canonical, status in _status_warnings(session, evaluator, vs)
        ]
    return FhirResponse(200, resource=answer(outcomes, vs_name=vs_name, cc=cc, notes=notes))


def batch_validate_code(
    ctx: Context, request: FhirRequest, res_type: str | None, res_id: str | None
) -> FhirResponse:
    """`$validate-code` for each `validation` Parameters: its parameters, with the others of
    the request (value set, tx-resource, options) where it does not set them. Each answer is
    a Parameters, or the OperationOutcome of a request that cannot be checked."""
    body = body_resource(request, None)
    if body.get("resourceType") != "Parameters":
        raise InvalidRequest(
            "The operation's body must be a Parameters resource", ("resourceType",)
        )
    shared = [
        p
        for p in body.get("parameter") or []
        if isinstance(p, dict) and p.get("name") != "validation"
    ]
    out: list[Json] = []
    for i, part in enumerate(body.get("parameter") or []):
        if not isinstance(part, dict) or part.get("name") != "validation":
            continue
        inner = part.get("resource")
        if not isinstance(inner, dict) or inner.get("resourceType") != "Parameters":
            raise InvalidRequest(
                "A validation must be a Parameters resource", (f"Parameters.parameter[{i}]",)
            )
        own = [p for p in inner.get("parameter") or [] if isinstance(p, dict)]
        names = {p.get("name") for p in own}
        merged = {
            "resourceType": "Parameters",
            "parameter": [*own, *(p for p in shared if p.get("name") not in names)],
        }
        single = FhirRequest(
            "POST",
            request.path,
            headers=request.headers,
            resource=merged,
            base_url=request.base_url,
        )
        try:
            answered = validate_code(ctx, single, "ValueSet", res_id).resource
        except FhirError as exc:
            answered = exc.outcome()
        out.append({"name": "validation", "resource": answered})
    return FhirResponse(200, resource={"resourceType": "Parameters", "parameter": out})


def _vs_name(vs: Json) -> str:
    url = vs.get("url") or (f"ValueSet/{vs['id']}" if vs.get("id") else "")
    return f"{url}|{vs['version']}" if vs.get("version") else str(url)


# -- $lookup
def lookup(
    ctx: Context, request: FhirRequest, res_type: str | None, res_id: str | None
) -> FhirResponse:
    inp = OperationInput(request)
    coding = inp.object("coding") or {}
    code = inp.text("code") or coding.get("code")
    url = inp.text("system") or coding.get("system")
    version = inp.text("version") or coding.get("version")
    if res_id is not None:
        stored = _read(ctx, "CodeSystem", res_id)
        url, version = stored.get("url"), stored.get("version")
    if not code or not url:
        raise InvalidRequest("$lookup needs a code and a system (or a coding)", ("code",))
    language = inp.text("displayLanguage") or _accept_language(request)
    wanted = {str(v) for v in inp.values("property")}
    with _session(ctx, inp) as session:
        supplements = _supplements(session, inp, None)
        system = session.systems.resolve(url, version)
        if system is None:
            raise unknown_code_system(url, version, "system")
        concept = session.systems.concept(system, code)
        if concept is None:
            raise NotFound(
                f"Unknown code '{code}' in the CodeSystem '{system.url}'"
                + (f" version '{system.version}'" if system.version else "")
            )
        header = session.header(system.res_id)
        params: list[Json] = [
            {"name": "name", "valueString": header.get("name") or system.url},
        ]
        if system.version:
            params.append({"name": "version", "valueString": system.version})
        display = _display(concept.display, concept, language)
        if display:
            params.append({"name": "display", "valueString": display})
        params.append({"name": "code", "valueCode": concept.code})
        params.append({"name": "system", "valueUri": system.url})
        params.append({"name": "abstract", "valueBoolean": concept.abstract})
        if concept.definition:
            params.append({"name": "definition", "valueString": concept.definition})
        for d in concept.designations:
            parts: list[Json] = []
            if d.get("language"):
                parts.append({"name": "language", "valueCode": d["language"]})
            if isinstance(d.get("use"), dict):
                parts.append({"name": "use", "valueCoding": d["use"]})
            parts.append({"name": "value", "valueString": d.get("value")})
            params.append({"name": "designation", "part": parts})
        cs_language = header.get("language")
        if isinstance(cs_language, str) and cs_language and concept.display:
            # the display itself, as the designation preferred for the code system's language
            params.append(
                {
                    "name": "designation",
                    "part": [
                        {"name": "language", "valueCode": cs_language},
                        {"name": "use", "valueCoding": PREFERRED_FOR_LANGUAGE},
                        {"name": "value", "valueString": concept.display},
                    ],
                }
            )

        extra = supplements.concepts(concept) if supplements is not None else []
        for source, row in extra:
            for d in row.designations:
                parts = []
                if d.get("language"):
                    parts.append({"name": "language", "valueCode": d["language"]})
                if isinstance(d.get("use"), dict):
                    parts.append({"name": "use", "valueCoding": d["use"]})
                parts.append({"name": "source", "valueCanonical": source.canonical})
                parts.append({"name": "value", "valueString": d.get("value")})
                params.append({"name": "designation", "part": parts})

        def want(name: str) -> bool:
            return not wanted or "*" in wanted or name in wanted

        properties = [*concept.properties, *(p for _, row in extra for p in row.properties)]
        for prop in properties:
            if want(str(prop.get("code"))):
                value = {k: v for k, v in prop.items() if k.startswith("value")}
                params.append(
                    {
                        "name": "property",
                        "part": [
                            {"name": "code", "valueCode": prop.get("code")},
                            {"name": "value", **value},
                        ],
                    }
                )
        if want("inactive"):
            params.append(_property("inactive", {"valueBoolean": concept.inactive}))
        if want("parent"):
            for parent in session.systems.parents(concept):
                params.append(_property("parent", {"valueCode": parent.code}, parent.display))
        if want("child"):
            for child in session.systems.children(concept):
                params.append(_property("child", {"valueCode": child.code}, child.display))
        if supplements is not None:
            params += [
                {"name": "used-supplement", "valueCanonical": canonical}
                for canonical in supplements.used
            ]
    return FhirResponse(200, resource={"resourceType": "Parameters", "parameter": params})


def _property(code: str, value: Json, description: str | None = None) -> Json:
    parts: list[Json] = [{"name": "code", "valueCode": code}, {"name": "value", **value}]
    if description:
        parts.append({"name": "description", "valueString": description})
    return {"name": "property", "part": parts}


# -- $subsumes
def subsumes(
    ctx: Context, request: FhirRequest, res_type: str | None, res_id: str | None
) -> FhirResponse:
    inp = OperationInput(request)
    a = inp.object("codingA") or {"code": inp.text("codeA"), "system": inp.text("system")}
    b = inp.object("codingB") or {"code": inp.text("codeB"), "system": inp.text("system")}
    url = inp.text("system") or a.get("system")
    version = inp.text("version") or a.get("version")
    if res_id is not None:
        stored = _read(ctx, "CodeSystem", res_id)
        url, version = stored.get("url"), stored.get("version")
    if not a.get("code") or not b.get("code") or not url:
        raise InvalidRequest(
            "$subsumes needs codeA, codeB and system (or codingA, codingB)", ("codeA",)
        )
    for name, coding in (("codingA", a), ("codingB", b)):
        if coding.get("system") and coding["system"] != url:
            raise InvalidRequest(f"{name} is not in code system {url}", (name,))
    with _session(ctx, inp) as session:
        system = session.systems.resolve(url, version)
        if system is None:
            raise unknown_code_system(url, version, "system")
        found = []
        for name, coding in (("codeA", a), ("codeB", b)):
            concept = session.systems.concept(system, str(coding["code"]))
            if concept is None:
                raise InvalidRequest(
                    f"Unknown code '{coding['code']}' in the CodeSystem '{system.url}'", (name,)
                )
            found.append(concept)
        outcome = session.systems.subsumption(found[0], found[1])
    return FhirResponse(
        200,
        resource={
            "resourceType": "Parameters",
            "parameter": [{"name": "outcome", "valueCode": outcome}],
        },
    )


# -- $translate
def translate(
    ctx: Context, request: FhirRequest, res_type: str | None, res_id: str | None
) -> FhirResponse:
    inp = OperationInput(request)
    # R5 names the code to translate source* (forward) or target* (reverse)
    r5 = any(inp.value(n) is not None for n in (*_R5_SOURCE, *_R5_TARGET))
    reverse = inp.boolean("reverse") or any(inp.value(n) is not None for n in _R5_TARGET)
    target_system = inp.text("targetsystem") or inp.text("targetSystem")
    if r5 and reverse:
        coding = _translate_coding(inp, "target", target_system)
        target_system = inp.text("sourceSystem")
    elif r5:
        coding = _translate_coding(inp, "source", inp.text("sourceSystem"))
    else:
        coding = _translate_coding(inp, "", inp.text("system"))
    code, system = coding.get("code"), coding.get("system")
    if not code or not system:
        raise InvalidRequest("$translate needs a code and its system (or a coding)", ("code",))
    map_url = inp.text("url")
    if res_id is not None:
        stored = _read(ctx, "ConceptMap", res_id)
        map_url = stored.get("url") or None
        if map_url is None:
            raise InvalidRequest(f"ConceptMap/{res_id} has no url", ("url",))
    version = inp.text("conceptMapVersion")
    if map_url and version:
        map_url = f"{map_url}|{version}"
    inline = inp.resource("conceptMap", "ConceptMap")
    extra = [inline] if inline else []
    with _service(ctx).session([*inp.resources("tx-resource"), *extra]) as session:
        if inline is not None:
            map_url = inline.get("url")
        if map_url and session.find_concept_map(map_url) is None and not inline:
            raise NotFound(f"ConceptMap {map_url} is not known")
        matches = session.translate(
            str(system), str(code), map_url=map_url, target_system=target_system, reverse=reverse
        )
    found = [m for m in matches if m.equivalence != "unmatched"]
    params: list[Json] = [{"name": "result", "valueBoolean": bool(found)}]
    if not found:
        params.append(
            {
                "name": "message",
                "valueString": f"No mapping found for {system}#{code}"
                + (f" in {map_url}" if map_url else ""),
            }
        )
    for m in matches:
        concept: Json = {}
        if m.system:
            concept["system"] = m.system
        if m.code:
            concept["code"] = m.code
        if m.display:
            concept["display"] = m.display
        parts: list[Json] = [{"name": "equivalence", "valueCode": m.equivalence}]
        if r5:
            # R5: `concept` is the target side, `source` the source side, `originMap` the map
            given = {k: v for k, v in coding.items() if k in ("system", "code") and v}
            target, source = (given, concept) if reverse else (concept, None)
            if target:
                parts.append({"name": "concept", "valueCoding": target})
            if source:
                parts.append({"name": "source", "valueCoding": source})
            if m.origin:
                parts.append({"name": "originMap", "valueCanonical": m.origin})
        else:
            if concept:
                parts.append({"name": "concept", "valueCoding": concept})
            if m.source:
                parts.append({"name": "source", "valueUri": m.source})
        params.append({"name": "match", "part": parts})
    return FhirResponse(200, resource={"resourceType": "Parameters", "parameter": params})


_R5_SOURCE = ("sourceCode", "sourceCoding", "sourceCodeableConcept")
_R5_TARGET = ("targetCode", "targetCoding", "targetCodeableConcept")


def _translate_coding(inp: OperationInput, prefix: str, system: str | None) -> Json:
    """The coding to translate: `{prefix}coding`, the first coding of
    `{prefix}codeableConcept`, else `{prefix}code` with `system`."""

    def name(base: str) -> str:
        return f"{prefix}{base[0].upper()}{base[1:]}" if prefix else base

    coding = inp.object(name("coding"))
    cc = inp.object(name("codeableConcept"))
    if coding is None and cc is not None:
        codings = [c for c in cc.get("coding") or [] if isinstance(c, dict)]
        coding = codings[0] if codings else None
    if coding is None:
        coding = {"code": inp.text(name("code")), "system": system}
    return coding


# -- $unmapped-codes
def unmapped_codes(
    ctx: Context, request: FhirRequest, res_type: str | None, res_id: str | None
) -> FhirResponse:
    inp = OperationInput(request)
    found = unmapped(ctx.store.rows, facility=inp.text("facility"), system=inp.text("system"))
    params = []
    for row in found:
        parts: list[Json] = [
            {"name": "system", "valueUri": row["system"]},
            {"name": "code", "valueCode": row["code"]},
        ]
        if row["display"]:
            parts.append({"name": "display", "valueString": row["display"]})
        if row["facility"]:
            parts.append({"name": "facility", "valueString": row["facility"]})
        parts += [
            {"name": "resourceType", "valueCode": row["resourceType"]},
            {"name": "seen", "valueInteger": int(row["seen"])},
            {"name": "firstSeen", "valueInstant": format_instant(int(row["firstSeen"]))},
            {"name": "lastSeen", "valueInstant": format_instant(int(row["lastSeen"]))},
        ]
        params.append({"name": "unmapped", "part": parts})
    return FhirResponse(200, resource={"resourceType": "Parameters", "parameter": params})


def _read_operation(
    code: str,
    definition: str,
    resource_types: tuple[str, ...],
    handler: Handler,
    documentation: str,
) -> Operation:
    """A read-only operation at type and instance level, by GET or POST."""
    return Operation(
        code,
        definition,
        system=False,
        type=True,
        instance=True,
        resource_types=resource_types,
        affects_state=False,
        methods=("GET", "POST"),
        handler=handler,
        documentation=documentation,
    )


OPERATIONS = [
    _read_operation(
        "expand",
        f"{BASE}/ValueSet-expand",
        ("ValueSet",),
        expand,
        "The codes of a value set: filter (type-ahead, accent-insensitive), "
        "count/offset, activeOnly, displayLanguage, includeDesignations.",
    ),
    _read_operation(
        "validate-code",
        f"{BASE}/ValueSet-validate-code",
        ("ValueSet", "CodeSystem"),
        validate_code,
        "Whether a code (code+system, coding, codeableConcept) is in a value set "
        "or a code system, with a right display.",
    ),
    Operation(
        "batch-validate-code",
        "http://hl7.org/fhir/OperationDefinition/ValueSet-batch-validate-code",
        system=False,
        type=True,
        instance=True,
        resource_types=("ValueSet",),
        affects_state=False,
        methods=("POST",),
        handler=batch_validate_code,
        documentation="$validate-code for each `validation` Parameters, the other parameters "
        "shared: a Parameters (or an OperationOutcome) per validation.",
    ),
    _read_operation(
        "lookup",
        f"{BASE}/CodeSystem-lookup",
        ("CodeSystem",),
        lookup,
        "A code's display, designations and properties.",
    ),
    _read_operation(
        "subsumes",
        f"{BASE}/CodeSystem-subsumes",
        ("CodeSystem",),
        subsumes,
        "How two codes of one code system relate: equivalent, subsumes, subsumed-by, not-subsumed.",
    ),
    _read_operation(
        "translate",
        f"{BASE}/ConceptMap-translate",
        ("ConceptMap",),
        translate,
        "A code's mappings through the stored ConceptMaps (reverse=true: back).",
    ),
    Operation(
        "unmapped-codes",
        "https://vnehr.org/fhir/OperationDefinition/unmapped-codes",
        system=True,
        type=False,
        instance=False,
        resource_types=(),
        affects_state=False,
        methods=("GET",),
        handler=unmapped_codes,
        documentation="Local codes that arrived without a map to a national code, most seen "
        "first (facility, system: narrow the list).",
    ),
]
