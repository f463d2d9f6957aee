"""Past versions under the policy (history and vread of one resource).

The policy judges a resource by its current version: its patient, owner and labels. An older
version may say something else: an Observation first filed on the wrong patient and then
corrected still holds, in version 1, the first patient's reference; a note labelled HIV
later may have been unlabelled before. So a caller the policy limits sees a past version
only if

- its owner facility is the caller's (a facility sees all its own data), or
- every patient it is about is one the caller may see now (the same policy, one query), and
  it carries no sensitive label (setting `access_sensitive`) the current version lacks.

Deletion tombstones hold nothing and are kept. Versions that fail are left out of the
history page and answer a vread with 404, like a version that does not exist.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson

from vnehr.audit.patients import PatientLinks
from vnehr.auth import access
from vnehr.policy.conditions import policed
from vnehr.policy.labels import ACT_CODE
from vnehr.policy.rules import owner_of
from vnehr.search.registry import SearchParamRegistry
from vnehr.storage.base import StoredVersion

if TYPE_CHECKING:
    from vnehr.interactions.context import Context


@lru_cache(maxsize=4)
def _links(registry: SearchParamRegistry) -> PatientLinks:
    return PatientLinks(registry)


def _labels(resource: dict[str, Any]) -> frozenset[str]:
    return frozenset(
        str(s.get("code"))
        for s in (resource.get("meta") or {}).get("security") or []
        if isinstance(s, dict) and s.get("system") == ACT_CODE
    )


def visible_versions(
    ctx: Context,
    found: access.Grant,
    current: StoredVersion | None,
    versions: list[StoredVersion],
) -> list[StoredVersion]:
    """The `versions` of one resource (whose `current` version the caller may see) that
    the caller may see too."""
    principal = found.principal
    if found.unrestricted or principal is None or not versions:
        return versions
    if not policed(principal, versions[0].res_type):
        return versions
    sensitive = frozenset(ctx.settings.sensitive_labels)
    now_labels: frozenset[str] = frozenset()
    if current is not None and current.content is not None:
        now_labels = _labels(orjson.loads(current.content))
    links = _links(ctx.registry)
    judged: list[tuple[StoredVersion, bool, frozenset[str]]] = []
    wanted: set[str] = set()
    for version in versions:
        if version.content is None:
            judged.append((version, True, frozenset()))
            continue
        resource = orjson.loads(version.content)
        labels = _labels(resource)
        if principal.facility and owner_of(resource) == principal.facility:
            judged.append((version, True, frozenset()))
            continue
        if (labels & sensitive) - now_labels:
            judged.append((version, False, frozenset()))
            continue
        patients = frozenset(links.of(resource))
        wanted |= patients
        judged.append((version, True, patients))
    seen: set[str] = set()
    if wanted:
        patient_grant = access.grant(principal, "Patient", "r")
        if patient_grant is not None:
            seen = access.visible(ctx, patient_grant, sorted(wanted))
    return [version for version, ok, patients in judged if ok and patients <= seen]
