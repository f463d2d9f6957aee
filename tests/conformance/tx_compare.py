"""Compare a terminology server's response with an expected response of the HL7 terminology
ecosystem tests (github.com/HL7/fhir-tx-ecosystem-ig), the way the official Java runner does.

The runner is org.hl7.fhir.validation.special.TxTester (hapifhir/org.hl7.fhir.core). For each
response it (1) converts the server's R4 resource to R5 (TerminologyClientR4, through
VersionConvertorFactory_40_50), (2) scrubs and sorts it (TxTesterScrubbers, TxTesterSorters) and
(3) compares it with the expected R5 JSON, which is used as it is, with
CompareUtilities.checkJsonSrcIsSame (org.hl7.fhir.r5.test.utils). normalize_response does (1) and
(2); Comparator does (3). The semantics, method by method:

CompareUtilities.compareObjects
  Every property of the actual object must be in the expected object ("unexpected property"),
  except fhir_comments: extra properties in the response fail the test. Every expected property
  must be in the actual one ("missing property") unless it is $optional$, is named in the
  object's "$optional-properties$" list (which may hold "*": everything is optional), or
  (allOptional) its value is an array whose object items all carry "$optional$" - an array of
  primitives counts as all optional, so a misspelt control such as "$optional": [...] is
  harmless. "$count-arrays$" names properties whose arrays are compared by length only.
CompareUtilities.compareNodes
  Objects and arrays must meet their own kind. Primitives: booleans by value; numbers by their
  JSON text; an expected null wants a null; strings: two strings that both contain "<div" match
  (narrative), otherwise matches() below, and failing that, the two strings match if they decode
  to the same non-empty bytes as base64 (commons-codec's lenient decoder: characters outside the
  base64 alphabet are skipped and the bits of an incomplete last group dropped). That last rule
  is a quirk - it makes "Display 1" equal "Display1", and even "0.1.0" equal "0.1.1" - but it is
  the official semantics, so it is kept (Comparator(base64_quirk=False) turns it off).
  Arrays: the actual array may not be longer than the expected one nor shorter than its
  non-optional items; then the items are walked in order, an expected item that does not match
  is skipped if it is optional, and every actual item must be used. The runner sorts the
  response's arrays first (TxTesterSorters) and the expected files are stored sorted. The test
  suite's readme says that array order never matters, so when the ordered walk fails this
  comparator also tries an order-free assignment (a bipartite matching: every actual item to a
  distinct expected item, every required expected item used) and passes if there is one;
  Comparator(strict_order=True) is the Java behaviour exactly.
CompareUtilities.isOptional / passesOptionalFilter
  "$optional$": true is optional. A string is a mode filter: "!m" - optional unless the runner
  runs in mode m (so "!tx.fhir.org" is optional for every server but tx.fhir.org);
  "warning:..." - always optional, and a missing item adds a warning (a warning is reported,
  it does not fail the test); "m" - optional only in mode m. The test data also uses
  "version:4" / "version:5" (the item is R5-only, resp. R4-only: $translate's "relationship"
  and "equivalence"): the CompareUtilities revision we could read treats these as plain modes;
  here they are optional when the server's FHIR major version is that number (the runner knows
  it: TxTester.vars()), which is what the data means.
CompareUtilities.matches (templates; the expected string starts and ends with "$")
  $$ anything; $id$ [A-Za-z0-9\\-\\.]{1,64}; $token$; $url$ (https?:// or www.); $uuid$
  urn:uuid:...; $instant$ and $date$ (FHIR regexes); $semver$; $string$ (no leading or
  trailing whitespace); $version$ equals the server's FHIR version (4.0.1 for R4, TxTester.vars
  from FhirPublication.toCode) or anything when unknown; $choice:a|b$ one of the values, exactly;
  $fragments:a|b$ contains every fragment, ignoring case; $external:N$ and $external:N:text$: with
  an externals file, exactly the external string N; without one (how we run, like the runner
  with no -externals), $external:N$ matches anything and $external:N:text$ needs the fragments of
  text (split on "|", ignoring case) - but the Java code splits the whole template on ":" and
  takes the third piece, so for "$external:1:http://x/y$" only "http" is checked. Kept as is.
  An unknown template is an error. Not in that revision but needed by the data (exclude/*):
  "$version$" inside a longer string ("http://hl7.org/fhir/administrative-gender|$version$")
  stands for the FHIR version too.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

JSON_KINDS = ("object", "array", "string", "number", "boolean", "null")
TX_ISSUE_TYPE = "http://hl7.org/fhir/tools/CodeSystem/tx-issue-type"

# R5 elements carried as cross-version extensions in R4 (VersionConvertorConstants).
EXT_VS_EXP_PROP = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ValueSet.expansion.property"
)
EXT_EXP_VS_CONT_PROP = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ValueSet.expansion.contains.property"
)
EXT_VERSION_ALGORITHM = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-CanonicalResource.versionAlgorithm"
)
EXT_VS_COMPOSE_PROPERTY = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ValueSet.compose.property"
)
EXT_VS_INCLUDE_COPYRIGHT = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ValueSet.compose.include.copyright"
)
EXT_VS_DESIGNATION_ADDITIONAL_USE = (
    "http://hl7.org/fhir/5.0/StructureDefinition/"
    "extension-ValueSet.compose.include.concept.designation.additionalUse"
)
EXT_CS_DESIGNATION_ADDITIONAL_USE = (
    "http://hl7.org/fhir/5.0/StructureDefinition/"
    "extension-CodeSystem.concept.designation.additionalUse"
)
EXT_VALUESET_FILTER_OP = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ValueSet.compose.include.filter.op"
)
EXT_VALUESET_FILTER_OP_R6 = (
    "http://hl7.org/fhir/6.0/StructureDefinition/extension-ValueSet.compose.include.filter.op"
)
IMPLICIT_RULES_OMITTED_MANDATORY_CODE = (
    "https://hl7.org/fhir/implicit-rules/omitted-mandatory-interversion-code"
)

# TxTesterScrubbers.TxTesterScrubberVisitor.isManagedExtension: the extensions with an absolute
# URL that survive scrubbing (every other one is removed from ValueSets and OperationOutcomes).
MANAGED_EXTENSIONS = frozenset(
    {
        "http://hl7.org/fhir/StructureDefinition/codesystem-alternate",
        "http://hl7.org/fhir/StructureDefinition/codesystem-conceptOrder",
        "http://hl7.org/fhir/StructureDefinition/codesystem-label",
        "http://hl7.org/fhir/StructureDefinition/coding-sctdescid",
        "http://hl7.org/fhir/StructureDefinition/itemWeight",
        "http://hl7.org/fhir/StructureDefinition/rendering-style",
        "http://hl7.org/fhir/StructureDefinition/rendering-xhtml",
        "http://hl7.org/fhir/StructureDefinition/translation",
        "http://hl7.org/fhir/StructureDefinition/valueset-concept-definition",
        "http://hl7.org/fhir/StructureDefinition/valueset-conceptOrder",
        "http://hl7.org/fhir/StructureDefinition/valueset-deprecated",
        "http://hl7.org/fhir/StructureDefinition/valueset-label",
        "http://hl7.org/fhir/StructureDefinition/valueset-supplement",
        "http://hl7.org/fhir/test/CodeSystem/de-multi",
        "http://hl7.org/fhir/test/CodeSystem/en-multi",
        "http://hl7.org/fhir/test/StructureDefinition/unknown-extension-1",
        "http://hl7.org/fhir/test/StructureDefinition/unknown-extension-3",
        "http://hl7.org/fhir/test/StructureDefinition/unknown-extension-4",
        "http://hl7.org/fhir/test/StructureDefinition/unknown-extension-5",
        "http://hl7.org/fhir/test/ValueSet/extensions-bad-supplement",
        "http://hl7.org/fhir/test/ValueSet/simple-all",
        "http://hl7.org/fhir/test/ValueSet/simple-enumerated",
        "http://hl7.org/fhir/StructureDefinition/alternate-code-use",
        "http://hl7.org/fhir/StructureDefinition/alternate-code-status",
        "http://hl7.org/fhir/test/ValueSet/simple-filter-isa",
    }
)

# CompareUtilities.matches
_FHIR_DATE = (
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])"
)
_FHIR_TIME = (
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?"
    r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
)
_TEMPLATES: dict[str, re.Pattern[str]] = {
    "$instant$": re.compile(_FHIR_DATE + _FHIR_TIME, re.ASCII),
    "$date$": re.compile(_FHIR_DATE + "(" + _FHIR_TIME + ")?", re.ASCII),
    "$uuid$": re.compile(
        r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII
    ),
    "$id$": re.compile(r"[A-Za-z0-9\-\.]{1,64}", re.ASCII),
    "$url$": re.compile(
        r"(https?://|www\.)[-a-zA-Z0-9+&@#/%?=~_|!:.;]*[-a-zA-Z0-9+&@#/%=~_|]", re.ASCII
    ),
    "$token$": re.compile(r"[0-9a-zA-Z_][0-9a-zA-Z_\.\-]*", re.ASCII),
    "$semver$": re.compile(
        r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
        r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
        r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
        r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?",
        re.ASCII,
    ),
}

# The order-free fallback stops trying on arrays larger than this (pairs compared).
_MAX_UNORDERED_PAIRS = 250_000


class JsonNumber(str):
    """A JSON number kept as its source text: the Java runner compares numbers by their text."""

    __slots__ = ()


def parse_json(data: str | bytes) -> Any:
    """JSON text (a UTF-8 byte order mark is allowed) with numbers kept as JsonNumber."""
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data.removeprefix("\ufeff")
    return json.loads(text, parse_int=JsonNumber, parse_float=JsonNumber)


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, JsonNumber):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    raise TypeError(f"not a JSON value: {value!r}")


def _number_text(value: Any) -> str:
    if isinstance(value, JsonNumber):
        return str(value)
    return repr(value) if isinstance(value, float) else str(value)


def _java_split(text: str, sep: str) -> list[str]:
    """Java's String.split: trailing empty strings are removed."""
    parts = text.split(sep)
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return parts


def _java_trim(text: str) -> str:
    """Java's String.trim: strips the characters up to U+0020."""
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


_B64 = {
    c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
}
_B64["-"] = 62  # commons-codec decodes the URL-safe alphabet too
_B64["_"] = 63


def lenient_base64(text: str) -> bytes:
    """commons-codec Base64.decodeBase64 in its default (lenient) policy: characters outside
    the alphabet are skipped, "=" ends the data, and an incomplete last group gives the bytes
    its bits fill (the remaining bits are dropped)."""
    out = bytearray()
    bits = 0
    count = 0
    for ch in text:
        if ch == "=":
            break
        value = _B64.get(ch)
        if value is None:
            continue
        bits = (bits << 6) | value
        count += 1
        if count == 4:
            out += bits.to_bytes(3, "big")
            bits = 0
            count = 0
    if count == 2:
        out.append(bits >> 4)
    elif count == 3:
        out += (bits >> 2).to_bytes(2, "big")
    return bytes(out)


def _same_bytes(actual: str, expected: str) -> bool:
    b1, b2 = lenient_base64(actual), lenient_base64(expected)
    return bool(b1) and bool(b2) and b1 == b2


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, JsonNumber) else value


@dataclass
class Comparator:
    """CompareUtilities, for one comparison (warnings accumulate).

    modes: the runner's modes (a "$optional$" filter names one); variables: TxTester.vars(),
    {"version": "4.0.1"} for an R4 server; externals: the strings of an externals file (None:
    compare without, as we do)."""

    modes: frozenset[str] = frozenset()
    variables: Mapping[str, str] = field(default_factory=dict)
    externals: Mapping[str, str] | None = None
    strict_order: bool = False
    base64_quirk: bool = True
    warnings: list[str] = field(default_factory=list)

    def compare(self, expected: Any, actual: Any) -> str | None:
        """None when actual matches expected, else the first difference (one line)."""
        return self._nodes("", expected, actual, count_only=False)

    # -- objects ---------------------------------------------------------------------------

    def _objects(
        self, path: str, expected: Mapping[str, Any], actual: Mapping[str, Any]
    ) -> str | None:
        optionals = _strings(expected.get("$optional-properties$"))
        if "$optional-properties$" in expected:
            optionals = ["$optional-properties$", "$count-arrays$", *optionals]
        count_onlys = _strings(expected.get("$count-arrays$"))
        for name, value in actual.items():
            if name == "fhir_comments":
                continue
            if name not in expected:
                return f"unexpected property {_join(path, name)}: {_show(value)[:120]}"
            diff = self._nodes(_join(path, name), expected[name], value, name in count_onlys)
            if diff:
                return diff
        for name, value in expected.items():
            if name == "fhir_comments" or name == "$optional$" or "*" in optionals:
                continue
            if name in optionals or name in actual or _all_optional(value):
                continue
            return f"missing property {_join(path, name)}: expected {_show(value)[:120]}"
        return None

    # -- any node --------------------------------------------------------------------------

    def _nodes(self, path: str, expected: Any, actual: Any, count_only: bool) -> str | None:
        ek, ak = _kind(expected), _kind(actual)
        primitive = ("string", "number", "boolean", "null")
        if not (ek in primitive and ak in primitive) and ek != ak:
            return f"{path or '(root)'}: expected {ek} {_show(expected)[:80]}, actual {ak}"
        if ak == "object":
            return self._objects(path, expected, actual)
        if ak == "array":
            return self._arrays(path, expected, actual, count_only)
        if ek == ak == "boolean":
            if expected != actual:
                return f"{path}: expected {_show(expected)}, actual {_show(actual)}"
            return None
        if ek == ak == "string":
            if "<div" in actual and "<div" in expected:
                return None
            if self.matches(actual, expected):
                return None
            if self.base64_quirk and _same_bytes(actual, expected):
                return None
            return f"{path}: expected {self.present(expected)}, actual {_show(actual)}"
        if ek == ak == "number":
            if _number_text(expected) != _number_text(actual):
                return f"{path}: expected {_number_text(expected)}, actual {_number_text(actual)}"
            return None
        if ek == "null":
            return None if ak == "null" else f"{path}: expected null, actual {_show(actual)}"
        return f"{path}: expected {ek} {_show(expected)}, actual {ak} {_show(actual)}"

    # -- arrays ----------------------------------------------------------------------------

    def _arrays(
        self, path: str, expected: list[Any], actual: list[Any], count_only: bool
    ) -> str | None:
        if count_only:
            if len(actual) != len(expected):
                return f"{path}: expected {len(expected)} items, actual {len(actual)}"
            return None
        warnings: list[str] = []
        diff = self._ordered(path, expected, actual, warnings)
        if diff is not None and not self.strict_order:
            matched, explanation = self._unordered(path, expected, actual, warnings)
            if matched:
                diff = None
            elif explanation:
                diff = explanation
        if diff is None:
            self.warnings.extend(warnings)
        return diff

    def _ordered(
        self, path: str, expected: list[Any], actual: list[Any], warnings: list[str]
    ) -> str | None:
        """CompareUtilities.compareNodes on arrays, not in pattern mode."""
        n_act, n_exp = len(actual), len(expected)
        optional = [self._is_optional(e) for e in expected]
        n_opt = sum(optional)
        if n_act > n_exp or n_act < n_exp - n_opt:
            return f"{path}: expected {n_exp} items ({n_exp - n_opt} required), actual {n_act}"
        c = 0
        for i, item in enumerate(expected):
            if c >= n_act:
                if i >= n_exp - n_opt and optional[i]:
                    warning = _optional_warning(item)
                    if warning is not None:
                        warnings.append(warning)
                    return None
                return f"{path}[{i}]: no actual item left for the expected {_show(item)[:120]}"
            diff, item_warnings = self._isolated(f"{path}[{i}]", item, actual[c])
            if diff and not optional[i]:
                return diff
            if not diff:
                warnings.extend(item_warnings)
                c += 1
        if c < n_act:
            return f"{path}[{c}]: unexpected item {_show(actual[c])[:120]}"
        return None

    def _unordered(
        self, path: str, expected: list[Any], actual: list[Any], warnings: list[str]
    ) -> tuple[bool, str | None]:
        """An assignment of every actual item to a distinct expected item it matches, using
        every required expected item (Kuhn's augmenting paths, required items first, give a
        maximum matching that keeps them). (True, None) when there is one, else (False, what
        is left over: the one differing pair compared, or the items missing and unexpected)."""
        if len(expected) * len(actual) > _MAX_UNORDERED_PAIRS:
            return False, None
        optional = [self._is_optional(e) for e in expected]

        @functools.cache
        def fits(i: int, j: int) -> tuple[bool, tuple[str, ...]]:
            diff, item_warnings = self._isolated("", expected[i], actual[j])
            return diff is None, tuple(item_warnings)

        owner: dict[int, int] = {}  # actual index -> expected index

        def augment(i: int, seen: set[int]) -> bool:
            for j in range(len(actual)):
                if j in seen or not fits(i, j)[0]:
                    continue
                seen.add(j)
                if j not in owner or augment(owner[j], seen):
                    owner[j] = i
                    return True
            return False

        for i in range(len(expected)):
            if not optional[i]:
                augment(i, set())
        for i in range(len(expected)):
            if optional[i]:
                augment(i, set())
        used = set(owner.values())
        missing = [i for i in range(len(expected)) if i not in used and not optional[i]]
        extra = [j for j in range(len(actual)) if j not in owner]
        if not missing and not extra:
            for j, i in owner.items():
                warnings.extend(fits(i, j)[1])
            for i, item in enumerate(expected):
                if i not in used and optional[i]:
                    warning = _optional_warning(item)
                    if warning is not None:
                        warnings.append(warning)
            return True, None
        unused = [i for i in range(len(expected)) if i not in used]
        if len(extra) == 1 and len(unused) == 1:
            j, i = extra[0], unused[0]
            return False, self._isolated(f"{path}[{j}]", expected[i], actual[j])[0]
        parts = []
        if missing:
            items = ", ".join(_summary(expected[i]) for i in missing)
            parts.append(f"missing {len(missing)} of {len(expected)} expected: {items}")
        if extra:
            items = ", ".join(f"[{j}] {_summary(actual[j])}" for j in extra)
            parts.append(f"unexpected {len(extra)} of {len(actual)} actual: {items}")
        return False, _shorten(f"{path}: " + "; ".join(parts))

    def _isolated(self, path: str, expected: Any, actual: Any) -> tuple[str | None, list[str]]:
        """Compare, keeping the warnings apart (they count only if the item is used)."""
        saved = self.warnings
        self.warnings = []
        try:
            diff = self._nodes(path, expected, actual, count_only=False)
            return diff, self.warnings
        finally:
            self.warnings = saved

    def _is_optional(self, item: Any) -> bool:
        if not isinstance(item, Mapping) or "$optional$" not in item:
            return False
        flag = item["$optional$"]
        if isinstance(flag, bool):
            return flag
        return isinstance(flag, str) and self.passes_optional_filter(flag)

    def passes_optional_filter(self, token: str) -> bool:
        if token.startswith("!"):
            return token[1:] not in self.modes
        if token.startswith("warning:"):
            return True
        if token.startswith("version:") and "version" in self.variables:
            return self.variables["version"].split(".")[0] == token.removeprefix("version:")
        return token in self.modes

    # -- strings ---------------------------------------------------------------------------

    def matches(self, actual: str, expected: str) -> bool:
        """CompareUtilities.matches."""
        if not (expected.startswith("$") and expected.endswith("$") and len(expected) > 1):
            if "$version$" in expected:
                return self._matches_embedded_version(actual, expected)
            return actual == expected
        if expected.startswith("$choice:"):
            return actual in _java_split(expected[8:-1], "|")
        if expected.startswith("$fragments:"):
            return _has_fragments(actual, _java_split(expected[11:-1], "|"))
        if expected.startswith("$external:"):
            cmd = _java_split(expected[1:-1], ":")
            if self.externals is not None:
                return actual == self.externals.get(cmd[1])
            if len(cmd) <= 2:
                return True
            return _has_fragments(actual, _java_split(cmd[2], "|"))
        if expected == "$$":
            return True
        if expected == "$string$":
            return actual == _java_trim(actual)
        if expected == "$version$":
            return "version" not in self.variables or actual == self.variables["version"]
        pattern = _TEMPLATES.get(expected)
        if pattern is None:
            raise ValueError(f"unhandled template {expected}")
        return pattern.fullmatch(actual) is not None

    def _matches_embedded_version(self, actual: str, expected: str) -> bool:
        if "version" in self.variables:
            return actual == expected.replace("$version$", self.variables["version"])
        pattern = ".*".join(re.escape(p) for p in expected.split("$version$"))
        return re.fullmatch(pattern, actual, re.DOTALL) is not None

    def present(self, expected: str) -> str:
        """CompareUtilities.presentExpected: what a template stands for, for messages."""
        if not (expected.startswith("$") and expected.endswith("$") and len(expected) > 1):
            return _show(expected)
        if expected.startswith("$choice:"):
            return f"one of {_java_split(expected[8:-1], '|')}"
        if expected.startswith("$fragments:"):
            return f"text containing all of {_java_split(expected[11:-1], '|')}"
        if expected.startswith("$external:"):
            cmd = _java_split(expected[1:-1], ":")
            if self.externals is not None:
                return f"{_show(self.externals.get(cmd[1]))} (external {cmd[1]})"
            if len(cmd) <= 2:
                return "anything (external string, no externals file)"
            return (
                f"text containing all of {_java_split(cmd[2], '|')} "
                f"(no externals file for {expected})"
            )
        if expected == "$version$" and "version" in self.variables:
            return _show(self.variables["version"])
        return expected


def _summary(item: Any) -> str:
    """A short name for an array item: a parameter's name and value, a concept's code..."""
    if isinstance(item, Mapping):
        bits = []
        for key in ("name", "url", "system", "code", "severity"):
            if key in item and isinstance(item[key], str):
                bits.append(f"{key}={item[key]}")
        value = _primitive(item)
        if value is not None:
            bits.append(f"value={value}")
        if "details" in item and isinstance(item["details"], Mapping):
            bits.append(f"text={item['details'].get('text', '')}")
        if bits:
            return "{" + " ".join(bits)[:160] + "}"
    return _show(item)[:120]


def _shorten(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _all_optional(value: Any) -> bool:
    """CompareUtilities.allOptional: an array whose object items all carry $optional$."""
    if not isinstance(value, list):
        return False
    return all("$optional$" in item for item in value if isinstance(item, Mapping))


def _optional_warning(item: Any) -> str | None:
    flag = item.get("$optional$") if isinstance(item, Mapping) else None
    if isinstance(flag, str) and flag.startswith("warning:"):
        return flag.removeprefix("warning:")
    return None


def _has_fragments(actual: str, fragments: Iterable[str]) -> bool:
    lowered = actual.lower()
    return all(f.lower() in lowered for f in fragments)


def compare(
    expected: Any,
    actual: Any,
    *,
    modes: Iterable[str] = (),
    variables: Mapping[str, str] | None = None,
    externals: Mapping[str, str] | None = None,
    strict_order: bool = False,
    base64_quirk: bool = True,
) -> tuple[str | None, list[str]]:
    """(the first difference or None, the warnings)."""
    comparator = Comparator(
        modes=frozenset(modes),
        variables=dict(variables or {}),
        externals=externals,
        strict_order=strict_order,
        base64_quirk=base64_quirk,
    )
    diff = comparator.compare(expected, actual)
    return diff, comparator.warnings


# ---------------------------------------------------------------------------------------------
# The response side: R4 to R5, scrubbing and sorting (TerminologyClientR4, TxTesterScrubbers,
# TxTesterSorters).
# ---------------------------------------------------------------------------------------------


def _extensions(element: dict[str, Any], url: str) -> list[dict[str, Any]]:
    found = [e for e in element.get("extension", []) if isinstance(e, dict) and e.get("url") == url]
    if found:
        rest = [
            e for e in element["extension"] if not (isinstance(e, dict) and e.get("url") == url)
        ]
        if rest:
            element["extension"] = rest
        else:
            del element["extension"]
    return found


def _ext_value(extension: Mapping[str, Any]) -> tuple[str, Any] | None:
    for key, value in extension.items():
        if key.startswith("value"):
            return key, value
    return None


def _sub(extension: Mapping[str, Any], url: str) -> list[Mapping[str, Any]]:
    return [
        e for e in extension.get("extension", []) if isinstance(e, dict) and e.get("url") == url
    ]


def _sub_value(extension: Mapping[str, Any], url: str) -> tuple[str, Any] | None:
    for sub in _sub(extension, url):
        value = _ext_value(sub)
        if value is not None:
            return value
    return None


def r4_to_r5(resource: dict[str, Any]) -> dict[str, Any]:
    """What VersionConvertorFactory_40_50 changes, for the resources a terminology server
    returns (in place; the resource is returned): the R5 elements that R4 carries as
    cross-version extensions become elements again, recursively into Parameters and Bundles.
    Everything else is the same in both versions for these resources."""
    kind = resource.get("resourceType")
    if kind in ("ValueSet", "CodeSystem", "ConceptMap"):
        for ext in _extensions(resource, EXT_VERSION_ALGORITHM):
            value = _ext_value(ext)
            if value is not None:
                resource["versionAlgorithm" + value[0].removeprefix("value")] = value[1]
    if kind == "ValueSet":
        _valueset_to_r5(resource)
    elif kind == "Parameters":
        for param in resource.get("parameter", []):
            _parameter_to_r5(param)
    elif kind == "Bundle":
        for entry in resource.get("entry", []):
            if isinstance(entry.get("resource"), dict):
                r4_to_r5(entry["resource"])
    return resource


def _parameter_to_r5(param: dict[str, Any]) -> None:
    if isinstance(param.get("resource"), dict):
        r4_to_r5(param["resource"])
    for part in param.get("part", []):
        _parameter_to_r5(part)


def _valueset_to_r5(vs: dict[str, Any]) -> None:
    if vs.get("implicitRules") == IMPLICIT_RULES_OMITTED_MANDATORY_CODE:
        del vs["implicitRules"]
    compose = vs.get("compose")
    if isinstance(compose, dict):
        props = [_ext_value(e) for e in _extensions(compose, EXT_VS_COMPOSE_PROPERTY)]
        if props:
            compose["property"] = [v[1] for v in props if v is not None]
        for key in ("include", "exclude"):
            for inc in compose.get(key, []):
                for ext in _extensions(inc, EXT_VS_INCLUDE_COPYRIGHT):
                    value = _ext_value(ext)
                    if value is not None:
                        inc["copyright"] = value[1]
                for concept in inc.get("concept", []):
                    for des in concept.get("designation", []):
                        _designation_to_r5(des)
                for flt in inc.get("filter", []):
                    op_element = flt.get("_op")
                    if isinstance(op_element, dict):
                        for url in (EXT_VALUESET_FILTER_OP, EXT_VALUESET_FILTER_OP_R6):
                            for ext in _extensions(op_element, url):
                                value = _ext_value(ext)
                                if value is not None:
                                    flt["op"] = value[1]
                        if not op_element:
                            del flt["_op"]
    expansion = vs.get("expansion")
    if isinstance(expansion, dict):
        properties = []
        for ext in _extensions(expansion, EXT_VS_EXP_PROP):
            prop: dict[str, Any] = {}
            code = _sub_value(ext, "code")
            uri = _sub_value(ext, "uri")
            if code is not None:
                prop["code"] = code[1]
            if uri is not None:
                prop["uri"] = uri[1]
            properties.append(prop)
        if properties:
            expansion["property"] = [*expansion.get("property", []), *properties]
        for contains in expansion.get("contains", []):
            _contains_to_r5(contains)


def _designation_to_r5(designation: dict[str, Any]) -> None:
    uses = [_ext_value(e) for e in _extensions(designation, EXT_VS_DESIGNATION_ADDITIONAL_USE)]
    if uses:
        designation["additionalUse"] = [v[1] for v in uses if v is not None]


def _contains_to_r5(contains: dict[str, Any]) -> None:
    properties = []
    for ext in _extensions(contains, EXT_EXP_VS_CONT_PROP):
        prop: dict[str, Any] = {}
        code = _sub_value(ext, "code")
        if code is not None:
            prop["code"] = code[1]
        value = _sub_value(ext, "value") or _sub_value(ext, "value[x]")
        if value is not None:
            prop[value[0]] = value[1]
        subs = []
        for sub in _sub(ext, "subProperty"):
            sub_prop: dict[str, Any] = {}
            sub_code = _sub_value(sub, "code")
            sub_value = _sub_value(sub, "value")
            if sub_code is not None:
                sub_prop["code"] = sub_code[1]
            if sub_value is not None:
                sub_prop[sub_value[0]] = sub_value[1]
            subs.append(sub_prop)
        if subs:
            prop["subProperty"] = subs
        properties.append(prop)
    if properties:
        contains["property"] = [*contains.get("property", []), *properties]
    for designation in contains.get("designation", []):
        _designation_to_r5(designation)
    for child in contains.get("contains", []):
        _contains_to_r5(child)


_ABSOLUTE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


def is_managed_extension(url: Any, tight: bool = False) -> bool:
    """TxTesterScrubberVisitor.isManagedExtension."""
    if tight or not isinstance(url, str) or not _ABSOLUTE_URL.match(url):
        return True
    return url in MANAGED_EXTENSIONS


def _scrub_extensions(node: Any, name: str = "") -> None:
    """The ElementVisitor walk: every element's unmanaged extensions go (not modifier
    extensions), except below ValueSet.compose, whose own extensions are scrubbed but whose
    children are not visited."""
    if isinstance(node, list):
        for item in node:
            _scrub_extensions(item, name)
        return
    if not isinstance(node, dict):
        return
    if isinstance(node.get("extension"), list):
        kept = [
            e
            for e in node["extension"]
            if not isinstance(e, dict) or is_managed_extension(e.get("url"))
        ]
        if kept:
            node["extension"] = kept
        else:
            del node["extension"]
    if name == "compose" and node is not None:
        return
    for key, value in node.items():
        _scrub_extensions(value, key)


def scrub_domain_resource(resource: dict[str, Any]) -> None:
    """TxTesterScrubbers.scrubDR: narrative and meta go, and unmanaged extensions."""
    resource.pop("text", None)
    resource.pop("meta", None)
    _scrub_extensions(resource)


def scrub_operation_outcome(oo: dict[str, Any]) -> None:
    """TxTesterScrubbers.scrubOperationOutcome: scrubDR, then the issues that carry only
    diagnostics go and the others lose their diagnostics (server detail)."""
    scrub_domain_resource(oo)
    issues = [i for i in oo.get("issue", []) if not ("diagnostics" in i and "details" not in i)]
    for issue in issues:
        issue.pop("diagnostics", None)
    if issues:
        oo["issue"] = issues
    else:
        oo.pop("issue", None)


def _primitive(element: Mapping[str, Any] | None) -> str | None:
    """The primitive value[x] of a parameter, as Java's primitiveValue() gives it."""
    if not isinstance(element, Mapping):
        return None
    for key, value in element.items():
        if key.startswith("value") and not isinstance(value, dict | list) and value is not None:
            if isinstance(value, bool):
                return "true" if value else "false"
            return _number_text(value) if _kind(value) == "number" else str(value)
    return None


def _part(param: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    for part in param.get("part", []):
        if part.get("name") == name:
            return part
    return None


def _cmp(a: str, b: str) -> int:
    return (a > b) - (a < b)


def _parameter_cmp(o1: Mapping[str, Any], o2: Mapping[str, Any]) -> int:
    """TxTesterSorters.ParameterSorter."""
    n1, n2 = o1.get("name", ""), o2.get("name", "")
    if n1 == n2 == "property":
        c1 = (_primitive(_part(o1, "code")) or "").lower()
        c2 = (_primitive(_part(o2, "code")) or "").lower()
        if c1 != c2:
            return _cmp(c1, c2)
        v1, v2 = _primitive(_part(o1, "value")), _primitive(_part(o2, "value"))
        if v1 is not None and v2 is not None and v1.lower() != v2.lower():
            return _cmp(v1.lower(), v2.lower())
    if n1 == n2 == "designation":
        l1 = (_primitive(_part(o1, "language")) or "").lower()
        l2 = (_primitive(_part(o2, "language")) or "").lower()
        if l1 != l2:
            return _cmp(l1, l2)
    return _cmp(n1, n2)


def _issue_key(issue: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """TxTesterSorters.OperationIssueSorter: severity, code, first expression, details.text."""
    expression = issue.get("expression") or [""]
    details = issue.get("details") or {}
    return (
        str(issue.get("severity", "")),
        str(issue.get("code", "")),
        str(expression[0]),
        str(details.get("text", "")),
    )


def _sort_extensions(element: dict[str, Any]) -> None:
    if isinstance(element.get("extension"), list):
        for ext in element["extension"]:
            if isinstance(ext, dict):
                _sort_extensions(ext)
        element["extension"].sort(
            key=lambda e: str(e.get("url", "")) if isinstance(e, dict) else ""
        )


def _sort_parts(param: dict[str, Any]) -> None:
    _sort_extensions(param)
    if isinstance(param.get("part"), list):
        for part in param["part"]:
            _sort_parts(part)
        param["part"].sort(key=functools.cmp_to_key(_parameter_cmp))


def sort_parameters(params: dict[str, Any]) -> None:
    """TxTesterSorters.sortParameters: parameters (and their parts) by name, the issues of an
    OperationOutcome inside, nested Parameters; and a "message" made of "; "-separated
    messages has its messages sorted."""
    plist = params.get("parameter")
    if not isinstance(plist, list):
        return
    for param in plist:
        _sort_parts(param)
    plist.sort(key=functools.cmp_to_key(_parameter_cmp))
    for param in plist:
        resource = param.get("resource")
        if (
            isinstance(resource, dict)
            and resource.get("resourceType") == "OperationOutcome"
            and isinstance(resource.get("issue"), list)
        ):
            resource["issue"].sort(key=_issue_key)
        if isinstance(resource, dict) and resource.get("resourceType") == "Parameters":
            sort_parameters(resource)
        if param.get("name") == "message" and isinstance(param.get("valueString"), str):
            text = param["valueString"]
            if "; " in text:
                param["valueString"] = "; ".join(sorted(text.split("; ")))


def _contains_code(contains: Mapping[str, Any]) -> str:
    return str(contains.get("code", ""))


def _designation_cmp(d1: Mapping[str, Any], d2: Mapping[str, Any]) -> int:
    if "language" in d1 and "language" in d2:
        return _cmp(str(d1["language"]), str(d2["language"]))
    return _cmp(str(d1.get("value", "")), str(d2.get("value", "")))


def _sort_contains(contains: dict[str, Any]) -> None:
    if isinstance(contains.get("contains"), list):
        contains["contains"].sort(key=_contains_code)
    _sort_extensions(contains)
    if isinstance(contains.get("designation"), list):
        contains["designation"].sort(key=functools.cmp_to_key(_designation_cmp))
    if isinstance(contains.get("property"), list):
        contains["property"].sort(key=lambda p: str(p.get("code", "")))
    for child in contains.get("contains", []):
        _sort_contains(child)


def sort_valueset(vs: dict[str, Any]) -> None:
    """TxTesterSorters.sortValueSet."""
    _sort_extensions(vs)
    expansion = vs.get("expansion")
    if not isinstance(expansion, dict):
        return
    if isinstance(expansion.get("parameter"), list):
        for p in expansion["parameter"]:
            _sort_extensions(p)
        expansion["parameter"].sort(key=lambda p: (str(p.get("name", "")), _primitive(p) or ""))
    if isinstance(expansion.get("property"), list):
        expansion["property"].sort(
            key=lambda p: (p.get("uri") is not None, str(p.get("uri", "")), str(p.get("code", "")))
        )
    _sort_extensions(expansion)
    if isinstance(expansion.get("contains"), list):
        expansion["contains"].sort(key=_contains_code)
        for contains in expansion["contains"]:
            _sort_contains(contains)


def _drop_empty(value: Any) -> Any:
    """The Java model has no nulls, empty objects or empty arrays: parsing and composing again
    drops them."""
    if isinstance(value, dict):
        out = {k: _drop_empty(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        out_list = [_drop_empty(v) for v in value]
        return [v for v in out_list if v is not None and v != {} and v != []]
    return value


def normalize_response(operation: str, resource: dict[str, Any], ok: bool) -> dict[str, Any]:
    """The response as TxTester compares it: R4 to R5 (TerminologyClientR4), then the
    operation's scrubbing and sorting (TxTester.expand/validate/validateCS/lookup/translate/
    batchValidate). ok: a 2xx answer (else resource is the OperationOutcome of an error)."""
    resource = r4_to_r5(_drop_empty(resource))
    kind = resource.get("resourceType")
    if not ok:
        if operation == "cs-validate-code":
            resource.pop("text", None)  # TxTester.validateCS does not scrub, only drops text
        else:
            scrub_operation_outcome(resource)
        return resource
    if kind == "ValueSet":
        scrub_domain_resource(resource)
        sort_valueset(resource)
    elif kind == "Parameters":
        resource.pop("meta", None)  # TxTesterScrubbers.scrubParameters
        sort_parameters(resource)
    return resource


def http_code_ok(expected: str, status: int) -> bool:
    """TxTester.httpCodeOk."""
    classes: dict[str, Callable[[int], bool]] = {
        "2xx": lambda s: 200 <= s < 300,
        "3xx": lambda s: 300 <= s < 400,
        "4xx": lambda s: 400 <= s < 500,
        "5xx": lambda s: 500 <= s < 600,
    }
    if expected not in classes:
        raise ValueError(f"unknown code string {expected}")
    return classes[expected](status)
