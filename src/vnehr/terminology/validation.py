"""`$validate-code`: is a code (code + system, a Coding, or each coding of a CodeableConcept)
in a value set or a code system, with a right display, and in which code system version?

The answer is a `Parameters` resource: `result`, the code's `code`, `system`, `version`,
`display` (in the requested language), `inactive`, and `issues` (an OperationOutcome whose
issues carry a `tx-issue-type` coding and the element at fault) with their texts joined as
`message`. The issue texts are those of the HL7 reference terminology server, so that clients
that read them (validators, the HL7 test suite) understand them.

Which code system version a coding is checked against:

- `force-system-version` (a version or a `1.0.x` pattern) always wins;
- else the value set include's `version` (a version or a pattern);
- else `system-version`, else `check-system-version`, used as defaults;
- else the coding's own `version`, else the latest version.

A coding whose `version` differs from the one the value set asks for is an error (the
include's version and the value's are named); an unknown version is an error naming the
known versions. `check-system-version` then requires the version used to match it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vnehr.errors import FhirError
from vnehr.fhir.definitions import code_systems as builtin_code_systems
from vnehr.terminology.code_systems import (
    ConceptRow,
    SystemVersion,
    _version_key,
    version_matches,
)
from vnehr.terminology.expansion import (
    Evaluator,
    InvalidValueSet,
    Member,
    Options,
    TerminologyError,
    UnknownCodeSystem,
    unknown_code_system,
)
from vnehr.terminology.issues import join_versions, tx_issue
from vnehr.terminology.supplements import Supplements

Json = dict[str, Any]


@dataclass
class Issue:
    severity: str
    code: str
    tx_code: str
    text: str
    location: str | None
    in_message: bool = True
    located: bool = True  # False: the place is given as an `expression` only

    def to_fhir(self) -> Json:
        return tx_issue(
            self.severity, self.code, self.tx_code, self.text, self.location, self.located
        )


@dataclass
class CodingOutcome:
    """What checking one coding found."""

    issues: list[Issue] = field(default_factory=list)
    valid: bool = False  # in the value set (or code system), no error
    system: str | None = None
    version: str | None = None
    code: str | None = None
    normalized: str | None = None  # the code system's case of a code given in another case
    display: str | None = None
    inactive: bool = False
    status: str | None = None
    unknown: str | None = None  # x-unknown-system
    caused_by: str | None = None  # x-caused-by-unknown-system
    concept_found: bool = False
    member_ok: bool = False  # in the value set, or not checked for a version problem
    vs_unusable: bool = False  # the value set asks for a version that is not known

    def add(
        self,
        severity: str,
        code: str,
        tx_code: str,
        text: str,
        location: str | None,
        in_message: bool = True,
        located: bool = True,
    ) -> None:
        self.issues.append(Issue(severity, code, tx_code, text, location, in_message, located))

    @property
    def errors(self) -> bool:
        return any(i.severity in ("error", "fatal") for i in self.issues)


def _whole_system(vs: Json, url: str) -> bool:
    """Whether the value set includes every code of system `url` (nothing excluded)."""
    compose = vs.get("compose")
    if not isinstance(compose, dict) or compose.get("exclude"):
        return False
    return any(
        isinstance(i, dict)
        and i.get("system") == url
        and not i.get("concept")
        and not i.get("filter")
        and not i.get("valueSet")
        for i in compose.get("include") or []
    )


def _at(base: str, name: str) -> str:
    return f"{base}.{name}" if base else name


def language_matches(wanted: list[str], language: str | None) -> bool:
    if not language:
        return False
    lang = language.lower()
    return any(w == lang or lang.split("-")[0] == w.split("-")[0] for w in wanted)


def parse_languages(header: str | None) -> list[str]:
    """`de, en;q=0.5, *;q=0` -> ['de', 'en'] (the wildcard and q=0 entries dropped)."""
    if not header:
        return []
    out = []
    for part in header.split(","):
        pieces = [p.strip() for p in part.split(";")]
        tag = pieces[0]
        if not tag or tag == "*":
            continue
        if any(p.replace(" ", "") in ("q=0", "q=0.0") for p in pieces[1:]):
            continue
        out.append(tag.lower())
    return out


def display_in(concept: ConceptRow, languages: list[str], default: str | None) -> str | None:
    """The concept's display in one of `languages` (its display if that is in the code
    system's language `default`, else a designation), else its display."""
    for lang in languages:
        if default and language_matches([lang], default) and concept.display:
            return concept.display
        for d in concept.designations:
            if language_matches([lang], d.get("language")) and d.get("value"):
                return str(d["value"])
    return concept.display


class Validator:
    """Checks codings against a value set (`vs`) or, without one, their code systems."""

    def __init__(
        self,
        evaluator: Evaluator,
        options: Options,
        *,
        languages: list[str],
        lenient: bool = False,
        infer_system: bool = False,
        cs_language: Any = None,
        is_value_set: Any = None,
        abstract_ok: bool = True,
        supplements: Supplements | None = None,
    ) -> None:
        self.evaluator = evaluator
        self.supplements = supplements
        self.abstract_ok = abstract_ok  # `abstract`: false - abstract concepts are not valid
        self.systems = evaluator.systems
        self.options = options
        self.languages = languages
        self.lenient = lenient
        self.infer_system = infer_system
        self.cs_language = cs_language or (lambda system: None)
        self.is_value_set = is_value_set or (lambda url: False)
        evaluator.purpose = "the code cannot be validated"

    # -- the version a coding is checked against
    def _include_of(
        self,
        vs: Json | None,
        url: str,
        version: str | None = None,
        code: str | None = None,
        display: str | None = None,
    ) -> tuple[bool, str | None]:
        """Whether the value set includes code system `url` directly, and the version it asks
        for. Of several includes of it in different versions: the one matching the coding's
        `version`, else the highest version that has the `code`, else the first."""
        if vs is None:
            return False, None
        compose = vs.get("compose")
        if not isinstance(compose, dict):
            return False, None
        includes = [
            i
            for i in compose.get("include") or []
            if isinstance(i, dict) and i.get("system") == url
        ]
        if not includes:
            return False, None
        versions = [v if isinstance(v := i.get("version"), str) else None for i in includes]
        if len(includes) > 1:
            if version:
                for v in versions:
                    if v and version_matches(v, version):
                        return True, v
            elif code is not None:
                found: list[tuple[str, bool]] = []
                for include, v in zip(includes, versions, strict=True):
                    system = self.systems.resolve(url, v) if v else None
                    concept = self.systems.concept(system, code) if system else None
                    listed = [c.get("code") for c in include.get("concept") or []]
                    if concept is None or (listed and concept.code not in listed):
                        continue
                    found.append((str(v), display is not None and concept.display == display))
                found.sort(key=lambda f: (f[1], _version_key(f[0])), reverse=True)
                if found:
                    return True, found[0][0]
        return True, versions[0]

    def _known_versions(self, url: str) -> list[str]:
        return sorted(
            {s.version for s in self.systems.versions(url) if s.version}, key=_version_key
        )

    def _unknown_version(self, out: CodingOutcome, url: str, version: str, base: str) -> None:
        err = unknown_code_system(url, version, None, self._known_versions(url))
        out.add("error", "not-found", "not-found", err.diagnostics, _at(base, "system"))
        out.caused_by = out.caused_by or f"{url}|{version}"

    def _choose_version(
        self,
        out: CodingOutcome,
        vs: Json | None,
        url: str,
        version: str | None,
        base: str,
        code: str | None = None,
        display: str | None = None,
    ) -> SystemVersion | None:
        """The code system version to check the coding against; adds the version issues."""
        _, include_version = self._include_of(vs, url, version, code, display)
        wanted, param = self.evaluator.include_version(url, include_version)
        if vs is None and param in (None, "check-system-version"):
            wanted, param = None, None
            forced = self.options.force_versions.get(url)
            if forced:
                wanted, param = forced, "force-system-version"
        chosen: SystemVersion | None = None
        if version:
            own = self.systems.resolve(url, version)
            if own is None:
                self._unknown_version(out, url, version, base)
            if wanted and not version_matches(wanted, version):
                if param is None:
                    text = (
                        f"The code system '{url}' version '{wanted}' in the ValueSet include is "
                        f"different to the one in the value ('{version}')"
                    )
                else:
                    text = (
                        f"The code system '{url}' version '{wanted}' resulting from the version "
                        f"'{include_version or ''}' in the ValueSet include is different to the "
                        f"one in the value ('{version}')"
                    )
                out.add("error", "invalid", "vs-invalid", text, _at(base, "version"))
                chosen = self.systems.resolve(url, wanted)
                if chosen is None:
                    self._unknown_version(out, url, wanted, base)
                    out.vs_unusable = True
                    chosen = own
            elif own is not None:
                chosen = own
            else:
                chosen = self.systems.resolve(url, wanted) if wanted else None
                if chosen is None:
                    chosen = self.systems.resolve(url, None)
                    if chosen is not None and vs is not None:
                        out.add(
                            "warning",
                            "invalid",
                            "vs-invalid",
                            f"The code system '{url}' version '{chosen.version}' for the "
                            "versionless include in the ValueSet include is different to the "
                            f"one in the value ('{version}')",
                            _at(base, "version"),
                            in_message=False,
                        )
        else:
            chosen = self.systems.resolve(url, wanted)
            if chosen is None and wanted:
                self._unknown_version(out, url, wanted, base)
                out.vs_unusable = True
                fallback = self.options.system_versions.get(url) or self.options.check_versions.get(
                    url
                )
                chosen = self.systems.resolve(url, fallback) if fallback else None
                chosen = chosen or self.systems.resolve(url, None)
        check = self.options.check_versions.get(url)
        if (
            chosen is not None
            and check
            and param != "force-system-version"
            and not version_matches(check, chosen.version)
        ):
            out.add(
                "error",
                "exception",
                "version-error",
                f"The version '{chosen.version}' is not allowed for system '{url}': required to "
                f"be '{check}' by a version-check parameter",
                _at(base, "version"),
            )
        return chosen

    # -- one coding
    def check(
        self, coding: Json, base: str, vs: Json | None, vs_name: str, in_cc: bool
    ) -> CodingOutcome:
        out = CodingOutcome()
        code = coding.get("code")
        url = coding.get("system")
        version = coding.get("version") if isinstance(coding.get("version"), str) else None
        display = coding.get("display") if isinstance(coding.get("display"), str) else None
        if not isinstance(code, str):
            return out
        out.code = code
        code_at = _at(base, "code")

        def not_in_vs(shown: str) -> None:
            if vs is None:
                return
            label = f"{shown}#{code}" + (f" ('{display}')" if display else "")
            _not_in_value_set(out, label, vs_name, in_cc, code_at)

        if not isinstance(url, str) or not url:
            if self.infer_system and vs is not None:
                url = self._infer(out, vs, code, vs_name, code_at)
                if url is None:
                    not_in_vs("")
                    return out
            else:
                out.add(
                    "warning",
                    "invalid",
                    "invalid-data",
                    f"{base or 'Coding'} has no system. A code with no system has no defined "
                    "meaning, and it cannot be validated. A system should be provided",
                    base or "Coding",
                )
                not_in_vs("")
                return out
        else:
            out.system = url
        shown = f"{url}|{version}" if version else url
        if ":" not in url:
            out.add(
                "error",
                "invalid",
                "invalid-data",
                f"{base or 'Coding'}.system must be an absolute reference, not a local reference",
                _at(base, "system"),
            )
            out.add(
                "error",
                "not-found",
                "not-found",
                f"A definition for CodeSystem '{url}' could not be found, so the code cannot be "
                "validated",
                _at(base, "system"),
            )
            out.unknown = url
            not_in_vs(url)
            return out
        if not self.systems.versions(url):
            supplement = self.systems.supplement_versions(url)
            if supplement:
                out.add(
                    "error",
                    "invalid",
                    "invalid-data",
                    f"CodeSystem {supplement[0].canonical} is a supplement, so can't be used as "
                    f"a value in {_at(base, 'system') if base else 'Coding.system'}",
                    _at(base, "system") if base else "Coding.system",
                )
                not_in_vs(url)
                return out
            if self.is_value_set(url):
                out.add(
                    "error",
                    "invalid",
                    "invalid-data",
                    f"The Coding references a value set, not a code system ('{url}')",
                    _at(base, "system"),
                )
                not_in_vs(url)
                return out
            if self._builtin(out, vs, url, code, version, base, vs_name, in_cc):
                return out
            included, _ = self._include_of(vs, url)
            if included:
                text = (
                    f"A definition for CodeSystem '{url}'"
                    + (f" version '{version}'" if version else "")
                    + " could not be found, so the code cannot be validated"
                )
                out.add("error", "not-found", "not-found", text, _at(base, "system"))
                out.caused_by = shown
                return out
            if version:
                err = unknown_code_system(url, version, None, [])
                text = err.diagnostics
            else:
                text = (
                    f"A definition for CodeSystem {url} could not be found, so the code cannot "
                    "be validated"
                )
            out.add("error", "not-found", "not-found", text, _at(base, "system"))
            out.unknown = url
            not_in_vs(shown)
            return out
        system = self._choose_version(out, vs, url, version, base, code, display)
        if system is None:
            return out
        out.version = system.version or None
        version_problem = out.errors
        concept = self.systems.concept(system, code)
        if concept is None:
            if system.content == "fragment":
                out.add(
                    "warning",
                    "code-invalid",
                    "invalid-code",
                    f"Unknown Code '{code}' in the CodeSystem '{system.url}' version "
                    f"'{system.version}' - note that the code system is labeled as a fragment, "
                    "so the code may be valid in some other fragment",
                    code_at,
                    in_message=False,
                )
                # a code of another fragment may be valid: where the value set takes every
                # code of the system, it is not rejected
                out.valid = vs is None or _whole_system(vs, url)
                out.member_ok = out.valid
                return out
            shown_version = f" version '{system.version}'" if system.version else ""
            out.add(
                "error",
                "code-invalid",
                "invalid-code",
                f"Unknown code '{code}' in the CodeSystem '{system.url}'{shown_version}",
                code_at,
            )
            if not version_problem:
                not_in_vs(system.url)
            return out
        out.concept_found = True
        if self.supplements is not None:
            concept = self.supplements.apply(concept)
        if concept.code != code:
            out.normalized = concept.code
        language = self.cs_language(system)
        out.display = display_in(concept, self.languages, language)
        out.inactive = concept.inactive
        status = {p.get("code"): p for p in concept.properties}.get("status")
        if status is not None:
            out.status = next((v for k, v in status.items() if k.startswith("value")), None)
        if concept.code != code:
            out.add(
                "information",
                "business-rule",
                "code-rule",
                f"The code '{code}' differs from the correct code '{concept.code}' by case. "
                f"Although the code system '{system.canonical}' is case insensitive, "
                "implementers are strongly encouraged to use the correct case anyway",
                code_at,
                in_message=False,
            )
        if display is not None:
            self._check_display(out, concept, system, display, language, base)
        if concept.inactive:
            state = (
                f"{out.status} and inactive"
                if isinstance(out.status, str) and out.status != "inactive"
                else "inactive"
            )
            out.add(
                "warning",
                "business-rule",
                "code-comment",
                f"The concept '{concept.code}' has a status of {state} and its use should be "
                "reviewed",
                base or "Coding",
            )
        if vs is None:
            out.member_ok = True
            out.valid = not out.errors
            return out
        if version_problem:
            out.member_ok = not out.vs_unusable
            return out
        try:
            member = self.evaluator.member(vs, url, code, system.version or None)
        except InvalidValueSet:
            raise
        except (TerminologyError, UnknownCodeSystem) as exc:
            out.add("error", "not-found", "not-found", exc.diagnostics, None)
            return out
        if member is None:
            compose = vs.get("compose") if isinstance(vs.get("compose"), dict) else {}
            if concept.inactive and (
                self.options.active_only or (compose or {}).get("inactive") is False
            ):
                out.add(
                    "error",
                    "business-rule",
                    "code-rule",
                    f"The concept '{concept.code}' is valid but is not active",
                    code_at,
                )
            not_in_vs(url)
            return out
        if concept.abstract and not self.abstract_ok:
            out.add(
                "error",
                "business-rule",
                "code-rule",
                f"Code '{system.url}#{concept.code}' is abstract, and not allowed in this context",
                code_at,
                located=False,
            )
            not_in_vs(url)
            return out
        if member.vs_status:
            out.add(
                "warning",
                "business-rule",
                "code-comment",
                f"The presence of the concept '{concept.code}' in the system '{system.url}' in "
                f"the value set {vs_name} is marked with a status of {member.vs_status} and its "
                "use should be reviewed",
                code_at,
                in_message=False,
            )
        out.member_ok = True
        out.valid = not out.errors
        return out

    def _builtin(
        self,
        out: CodingOutcome,
        vs: Json | None,
        url: str,
        code: str,
        version: str | None,
        base: str,
        vs_name: str,
        in_cc: bool,
    ) -> bool:
        """A code system of the FHIR specification (codes only): checked by membership."""
        known = builtin_code_systems()
        if url not in known:
            return False
        codes, insensitive = known[url]
        probe = code.lower() if insensitive else code
        if probe not in codes:
            out.add(
                "error",
                "code-invalid",
                "invalid-code",
                f"Unknown code '{code}' in the CodeSystem '{url}'",
                _at(base, "code"),
            )
            return True
        out.concept_found = True
        if vs is None:
            out.member_ok = True
            out.valid = True
            return True
        member = self.evaluator.member(vs, url, code, version)
        if member is None:
            _not_in_value_set(out, f"{url}#{code}", vs_name, in_cc, _at(base, "code"))
            return True
        out.display = member.display
        out.member_ok = True
        out.valid = True
        return True

    def _infer(
        self, out: CodingOutcome, vs: Json, code: str, vs_name: str, code_at: str
    ) -> str | None:
        systems: list[str] = []
        compose = vs.get("compose") if isinstance(vs.get("compose"), dict) else None
        for include in (compose or {}).get("include") or []:
            url = include.get("system") if isinstance(include, dict) else None
            if isinstance(url, str) and url not in systems:
                try:
                    if self.evaluator.member(vs, url, code) is not None:
                        systems.append(url)
                except FhirError:
                    continue
        if len(systems) == 1:
            out.system = systems[0]
            return systems[0]
        text = (
            f"The System URI could not be determined for the code '{code}' in the ValueSet "
            f"'{vs_name}'"
        )
        if systems:
            text += f": value set expansion has multiple matches: [{', '.join(systems)}]"
        out.add("error", "not-found", "cannot-infer", text, code_at)
        return None

    @staticmethod
    def _has_use(concept: ConceptRow, value: str) -> bool:
        return any(
            d.get("value") == value and not d.get("language") and d.get("use")
            for d in concept.designations
        )

    def _check_display(
        self,
        out: CodingOutcome,
        concept: ConceptRow,
        system: SystemVersion,
        display: str,
        default_language: str | None,
        base: str,
    ) -> None:
        choices: list[tuple[str, str | None]] = []
        if concept.display:
            choices.append((concept.display, default_language))
        for d in concept.designations:
            value = d.get("value")
            if isinstance(value, str) and (value, d.get("language")) not in choices:
                choices.append((value, d.get("language")))
        at = _at(base, "display")
        severity = "warning" if self.lenient else "error"
        ref = f"{system.url}#{concept.code}"
        if self.languages:
            # a display of no stated language (a code system without `language`) is taken
            # as valid in any language
            in_language = [
                c
                for c in choices
                if language_matches(self.languages, c[1])
                or (c[1] is None and c[0] == concept.display)
            ]
        else:
            in_language = choices
        if any(display == value for value, _ in in_language):
            return
        langs = ", ".join(self.languages) if self.languages else "--"
        if self.languages and not in_language:
            if any(display == value for value, _ in choices):
                out.add(
                    "information",
                    "invalid",
                    "invalid-display",
                    f"There are no valid display names found for the code {ref} for language(s) "
                    f"'{langs}'. The display is '{display}' which is a valid display for the "
                    "default language",
                    at,
                )
                return
            out.add(
                severity,
                "invalid",
                "invalid-display",
                f"Wrong Display Name '{display}' for {ref}. There are no valid display names "
                f"found for language(s) '{langs}'. Default display is '{concept.display}'",
                at,
            )
            return
        # a designation of no language with a use (an abbreviation, a legacy term) is
        # not offered as a display
        offered = [
            (value, lang)
            for value, lang in in_language
            if lang or value == concept.display or not self._has_use(concept, value)
        ]
        shown = [f"'{value}'" + (f" ({lang})" if lang else "") for value, lang in offered]
        if len(shown) == 1:
            valid = f"Valid display is {shown[0]}"
        else:
            valid = f"Valid display is one of {len(shown)} choices: " + join_versions(shown)
        out.add(
            severity,
            "invalid",
            "invalid-display",
            f"Wrong Display Name '{display}' for {ref}. {valid} (for the language(s) '{langs}')",
            at,
        )


# concept statuses told in a $validate-code answer (of an active concept)
_STATUSES = frozenset({"deprecated", "withdrawn", "retired"})


def answer(
    outcomes: list[CodingOutcome],
    *,
    vs_name: str | None,
    cc: Json | None,
    notes: Sequence[Issue] = (),
) -> Json:
    """The Parameters of a $validate-code answer; `notes` (about the code systems and value
    sets used) come first among the issues."""
    issues: list[Issue] = [*notes, *(i for o in outcomes for i in o.issues)]
    if cc is not None:
        # The first coding in the value set answers; any error of any coding fails.
        chosen = next((o for o in outcomes if o.valid), None) or next(
            (o for o in outcomes if o.member_ok), None
        )
        result = chosen is not None and chosen.valid
        if result:
            # a coding from a code system the server does not know (a local code, a
            # translation) does not fail a concept that has a valid coding
            for o in outcomes:
                if o.unknown:
                    for i in o.issues:
                        if i.severity == "error":
                            i.severity = "warning"
        if (
            chosen is None
            and vs_name is not None
            and any(i.tx_code == "this-code-not-in-vs" for i in issues)
        ):
            issues.append(
                Issue(
                    "error",
                    "code-invalid",
                    "not-in-vs",
                    f"No valid coding was found for the value set '{vs_name}'",
                    None,
                )
            )
        result = result and not any(i.severity in ("error", "fatal") for i in issues)
    else:
        chosen = outcomes[0] if outcomes else CodingOutcome()
        result = chosen.valid
    params: list[Json] = []
    if chosen is not None:
        if chosen.code:
            params.append({"name": "code", "valueCode": chosen.code})
        if chosen.display:
            params.append({"name": "display", "valueString": chosen.display})
        if chosen.inactive:
            params.append({"name": "inactive", "valueBoolean": True})
        if chosen.normalized:
            params.append({"name": "normalized-code", "valueCode": chosen.normalized})
        if isinstance(chosen.status, str) and (chosen.inactive or chosen.status in _STATUSES):
            params.append({"name": "status", "valueCode": chosen.status})
        if chosen.system:
            params.append({"name": "system", "valueUri": chosen.system})
        if chosen.version:
            params.append({"name": "version", "valueString": chosen.version})
    if cc is not None:
        params.append({"name": "codeableConcept", "valueCodeableConcept": cc})
    for o in outcomes:
        if o.unknown:
            params.append({"name": "x-unknown-system", "valueCanonical": o.unknown})
        if o.caused_by:
            params.append({"name": "x-caused-by-unknown-system", "valueCanonical": o.caused_by})
    if issues:
        params.append(
            {
                "name": "issues",
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [i.to_fhir() for i in issues],
                },
            }
        )
    texts = [i.text for i in issues if i.in_message]
    if texts:
        params.append({"name": "message", "valueString": "; ".join(texts)})
    params.append({"name": "result", "valueBoolean": result})
    params.sort(key=lambda p: p["name"])
    return {"resourceType": "Parameters", "parameter": params}


__all__ = ["CodingOutcome", "Issue", "Member", "Validator", "answer", "parse_languages"]


def _not_in_value_set(out: CodingOutcome, label: str, vs_name: str, in_cc: bool, at: str) -> None:
    """The code is not in the value set: information for one coding of a CodeableConcept
    (another may be), else an error, told before any issue about its display."""
    text = f"The provided code '{label}' was not found in the value set '{vs_name}'"
    if in_cc:
        out.add("information", "code-invalid", "this-code-not-in-vs", text, at, in_message=False)
        return
    out.add("error", "code-invalid", "not-in-vs", text, at)
    first = next((i for i, x in enumerate(out.issues) if x.tx_code == "invalid-display"), None)
    if first is not None:
        out.issues.insert(first, out.issues.pop())
