"""SMART on FHIR scopes (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).

A clinical scope is `context/Type.permissions[?query]`: context `patient`, `user` or
`system`; `Type` a resource type or `*`; permissions a subset of `cruds` in that order (v2)
or `read`, `write`, `*` (v1, read as `rs`, `cud`, `cruds`); an optional query narrows the
resources it covers (`patient/Observation.rs?category=laboratory`). Everything else
(`openid`, `fhirUser`, `launch`, `launch/patient`, `offline_access`, ...) is a plain scope.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl

PERMISSIONS = "cruds"
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_CLINICAL = re.compile(r"^(patient|user|system)/([A-Za-z]+|\*)\.([a-z*]+)(?:\?(.+))?$")
# The plain scopes vnehr knows; a requested scope outside these and the clinical form is
# not granted.
PLAIN = frozenset(
    {
        "openid",
        "fhirUser",
        "profile",
        "launch",
        "launch/patient",
        "launch/encounter",
        "offline_access",
        "online_access",
        ADMIN := "vnehr/admin",  # operators: manage clients and accounts
        ISSUE_CODES := "vnehr/activation",  # facilities: issue citizens' activation codes
        LAUNCH := "vnehr/launch",  # an EHR: create EHR-launch contexts for its apps
        NATIONAL := "vnehr/national",  # a national service: every record (vnehr.policy)
        PUBLIC_HEALTH := "vnehr/public-health",  # counts only, never a record
    }
)


class ScopeError(ValueError):
    """A scope string that is not a SMART scope."""


@dataclass(frozen=True, slots=True)
class ClinicalScope:
    context: str  # patient | user | system
    res_type: str  # a resource type or "*"
    permissions: frozenset[str]  # letters of "cruds"
    query: tuple[tuple[str, str], ...] = ()
    text: str = ""

    def covers(self, other: ClinicalScope) -> bool:
        """Whether this scope grants at least what `other` asks (for checking a request
        against what a client may have)."""
        return (
            self.context == other.context
            and self.res_type in ("*", other.res_type)
            and other.permissions <= self.permissions
            and (not self.query or self.query == other.query)
        )


def parse_clinical(text: str) -> ClinicalScope | None:
    """The clinical scope `text`, None for a plain scope; ScopeError when malformed."""
    match = _CLINICAL.match(text)
    if match is None:
        if "/" in text and text.split("/", 1)[0] in ("patient", "user", "system"):
            raise ScopeError(f"'{text}' is not a SMART scope (context/Type.permissions)")
        return None
    context, res_type, perms, query = match.groups()
    if perms in _V1:
        letters = _V1[perms]
    elif _in_order(perms):
        letters = perms
    else:
        raise ScopeError(f"'{text}': permissions must be read, write, * or a subset of cruds")
    pairs = tuple(parse_qsl(query, keep_blank_values=False)) if query else ()
    if query and not pairs:
        raise ScopeError(f"'{text}': the query after '?' is empty")
    return ClinicalScope(context, res_type, frozenset(letters), pairs, text)


def _in_order(perms: str) -> bool:
    position = -1
    for letter in perms:
        index = PERMISSIONS.find(letter)
        if index <= position:
            return False
        position = index
    return bool(perms)


@dataclass(frozen=True, slots=True)
class Scopes:
    """A set of granted scopes, parsed once."""

    plain: frozenset[str]
    clinical: tuple[ClinicalScope, ...]

    @classmethod
    def parse(cls, text: str | Iterable[str]) -> Scopes:
        items = text.split() if isinstance(text, str) else list(text)
        plain: set[str] = set()
        clinical: list[ClinicalScope] = []
        for item in items:
            scope = parse_clinical(item)
            if scope is None:
                plain.add(item)
            else:
                clinical.append(scope)
        return cls(frozenset(plain), tuple(clinical))

    def text(self) -> str:
        return " ".join([*sorted(self.plain), *(s.text for s in self.clinical)])

    def __contains__(self, plain: str) -> bool:
        return plain in self.plain

    def matching(self, res_type: str, permission: str) -> list[ClinicalScope]:
        """The clinical scopes that grant `permission` on `res_type` ("*": every type)."""
        return [
            s
            for s in self.clinical
            if permission in s.permissions and s.res_type in ("*", res_type)
        ]

    def contexts(self) -> set[str]:
        return {s.context for s in self.clinical}


def narrow(requested: Scopes, allowed: Scopes) -> Scopes:
    """What may be granted of `requested` to a client registered with `allowed`: each
    requested scope that an allowed one covers (OAuth 2.0 lets a server grant less)."""
    plain = frozenset(s for s in requested.plain if s in allowed.plain and s in PLAIN)
    clinical = tuple(s for s in requested.clinical if any(a.covers(s) for a in allowed.clinical))
    return Scopes(plain, clinical)
