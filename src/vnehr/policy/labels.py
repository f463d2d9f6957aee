"""Security labels put on resources by the codes they carry (`data/labels.yaml`, or the
file of the setting `access_labels`), so that sensitive data (HIV, mental health, substance
use, sexual and reproductive health) is kept from other facilities without each hospital
having to label it (docs/access.md).

Every coding of the resource (any depth: `code`, `valueCodeableConcept`, `reasonCode`, ...)
is looked at; a label is added to `meta.security` once, never removed: a label a facility
set by hand stays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from vnehr.fhir import json as fhir_json

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


@dataclass(frozen=True, slots=True)
class LabelRule:
    label: str
    system: str
    codes: frozenset[str]
    prefixes: tuple[str, ...]

    def holds(self, system: Any, code: Any) -> bool:
        if system != self.system or not isinstance(code, str):
            return False
        return code in self.codes or code.startswith(self.prefixes)


@cache
def load_rules(path: str = "") -> tuple[LabelRule, ...]:
    """The rules of `path` (a YAML file), or the built-in ones."""
    if path:
        text = Path(path).read_text("utf-8")
    else:
        text = resources.files("vnehr.policy").joinpath("data/labels.yaml").read_text("utf-8")
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path or 'labels.yaml'}: a mapping of label -> rules is expected")
    out = []
    for label, items in data.items():
        for item in items or []:
            if not isinstance(item, dict) or not isinstance(item.get("system"), str):
                raise ValueError(f"{path or 'labels.yaml'}: label {label} needs a system")
            out.append(
                LabelRule(
                    str(label),
                    item["system"],
                    frozenset(str(c) for c in item.get("codes") or []),
                    tuple(str(p) for p in item.get("prefixes") or []),
                )
            )
    return tuple(out)


_SKIPPED = frozenset({"meta", "text", "contained"})


@cache
def _systems(rules: tuple[LabelRule, ...]) -> frozenset[str]:
    return frozenset(rule.system for rule in rules)


@cache
def _code_pattern(rules: tuple[LabelRule, ...]) -> re.Pattern[bytes]:
    """`"code":"<a rule's code or prefix>` in compact JSON: a resource without it earns
    no label, found in a few microseconds instead of a walk over every element."""
    alternatives = [re.escape(c) + '"' for rule in rules for c in rule.codes]
    alternatives += [re.escape(p) for rule in rules for p in rule.prefixes]
    alternatives.sort(key=len, reverse=True)
    return re.compile(('"code":"(?:' + "|".join(alternatives) + ")").encode())


def _codings(resource: dict[str, Any], systems: frozenset[str]) -> list[tuple[str, str]]:
    """Every `(system, code)` of `resource` whose system is one of `systems`, at any depth
    outside `meta`, `text` and `contained`. A loop over a stack, not a recursive generator:
    it runs on every write (docs/benchmarks.md)."""
    found: list[tuple[str, str]] = []
    stack: list[Any] = [resource]
    pop, push = stack.pop, stack.append
    while stack:
        value = pop()
        if type(value) is dict:
            system = value.get("system")
            if system in systems:
                code = value.get("code")
                if isinstance(code, str):
                    found.append((system, code))
            for key, item in value.items():
                if type(item) in (dict, list) and key not in _SKIPPED:
                    push(item)
        else:
            for item in value:
                if type(item) in (dict, list):
                    push(item)
    return found


def labelled(resource: dict[str, Any], rules: tuple[LabelRule, ...]) -> dict[str, Any]:
    """`resource` with the labels its codings earn added to `meta.security`."""
    if not rules or not _code_pattern(rules).search(fhir_json.dumps(resource)):
        return resource
    earned = {
        rule.label
        for system, code in _codings(resource, _systems(rules))
        for rule in rules
        if rule.holds(system, code)
    }
    if not earned:
        return resource
    meta = dict(resource.get("meta") or {})
    security = list(meta.get("security") or [])
    present = {(s.get("system"), s.get("code")) for s in security if isinstance(s, dict)}
    for label in sorted(earned):
        if (ACT_CODE, label) not in present:
            security.append({"system": ACT_CODE, "code": label})
    meta["security"] = security
    return {**resource, "meta": meta}
