"""The intermediate representation of a FHIR search: frozen dataclasses, no SQL.

parse.py builds it from query parameters, passes.py normalises it, compile/ turns it into
one SQL statement and match.py evaluates it on resources in memory. Every leaf names the
resource type and parameter code it applies to, so that the same leaf means the same thing
wherever it sits (inside a chain, a `_has`, an access rule).

Semantics (https://hl7.org/fhir/R4/search.html): a resource matches a leaf when one of its
index rows for that parameter satisfies the leaf's condition; `Or` and `And` combine;
`Not` is the complement over resources (`:not`, `:missing=true`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Prefix = Literal["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]
PREFIXES: tuple[str, ...] = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


@dataclass(frozen=True, slots=True)
class Param:
    """A search parameter of one resource type, and the index table its rows live in."""

    res_type: str
    code: str
    type: str  # token, string, date, number, quantity, reference, uri, composite


# -- leaves: conditions on the index rows of one parameter


@dataclass(frozen=True, slots=True)
class TokenLeaf:
    """`code`, `system|code`, `|code` (no system), `system|` (any code of the system).

    `system` None: any system; "" : no system. `code` None: any code.
    """

    param: Param
    system: str | None
    code: str | None


@dataclass(frozen=True, slots=True)
class TokenTextLeaf:
    """`:text`: the folded text or display starts with `text` (folded)."""

    param: Param
    text: str


@dataclass(frozen=True, slots=True)
class InValueSet:
    """`:in` (and, under Not, `:not-in`): a coding in the value set `url` (a canonical url or
    `ValueSet/id`). passes.expand_value_sets replaces it by its codes before compiling."""

    param: Param
    url: str


@dataclass(frozen=True, slots=True)
class Subsumed:
    """Token `:below` (the code and every code it subsumes) or `:above` (the code and every
    code subsuming it) in its code system's hierarchy; passes.expand_value_sets replaces it
    by its codes before compiling."""

    param: Param
    system: str
    code: str
    mode: Literal["above", "below"]


@dataclass(frozen=True, slots=True)
class StringLeaf:
    """`value` folded for `start` and `contains`, NFC for `exact`."""

    param: Param
    value: str
    mode: Literal["start", "contains", "exact"]


@dataclass(frozen=True, slots=True)
class DateLeaf:
    """A date search value: its inclusive range [low, high] in epoch microseconds."""

    param: Param
    prefix: Prefix
    low: int
    high: int


@dataclass(frozen=True, slots=True)
class NumberLeaf:
    """A number (or the numeric part of a quantity) with its precision range [low, high).

    For a quantity, `system` and `code` (None: any) restrict the unit; `unit_only` says the
    search gave `value||unit`, which matches the code or the unit as written.
    """

    param: Param
    prefix: Prefix
    value: float
    low: float
    high: float
    system: str | None = None
    code: str | None = None
    unit_only: bool = False


@dataclass(frozen=True, slots=True)
class ReferenceLeaf:
    """`Type/id` (type None: any type), or an absolute `url`."""

    param: Param
    target_type: str | None
    target_id: str | None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class UriLeaf:
    param: Param
    uri: str
    mode: Literal["eq", "above", "below"]


@dataclass(frozen=True, slots=True)
class Missing:
    """`:missing=true` (no row for the parameter) or `false` (at least one)."""

    param: Param
    missing: bool


@dataclass(frozen=True, slots=True)
class CompositeLeaf:
    """Components that must all hold on one row of the composite parameter."""

    param: Param
    parts: tuple[Leaf, ...]


# -- leaves on the resource row itself


@dataclass(frozen=True, slots=True)
class IdLeaf:
    res_type: str
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LastUpdatedLeaf:
    res_type: str
    prefix: Prefix
    low: int
    high: int


@dataclass(frozen=True, slots=True)
class TypeLeaf:
    """The resource is of one of `types` (system search with `_type`)."""

    types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Nothing:
    """Matches no resource (a parameter that can have no rows, an empty expansion)."""

    res_type: str


@dataclass(frozen=True, slots=True)
class Access:
    """The caller's access policy (vnehr.policy, docs/access.md) on resources of
    `res_types`: a resource matches when it is the `owner` facility's own (tagged so), or
    when one of the Patients it belongs to (its Patient compartment) is open to the caller:
    one of `patients`, or a patient of a person for whom one of `parties` has a rule of one
    of `effects` in force at `now` (break-the-glass always; the others unless a `deny` rule
    closes the record), and the resource carries no label of `sensitive` without a permit
    for it and no label denied to the parties. Compiled into SQL like any other condition,
    so paging, counts, includes and chains never see what it leaves out."""

    res_types: tuple[str, ...]
    owner: tuple[str, str] | None  # (tag system, facility id)
    parties: tuple[str, ...]
    effects: tuple[str, ...]
    patients: tuple[str, ...]
    sensitive: tuple[str, ...]
    now: int


# -- structure


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


@dataclass(frozen=True, slots=True)
class Chain:
    """`param:Type.inner...`: a reference of `param` points at a `target_type` resource that
    matches `inner` (whose leaves are on `target_type`)."""

    param: Param
    target_type: str
    inner: Node


@dataclass(frozen=True, slots=True)
class Has:
    """`_has:Source:ref:inner`: some `source` resource whose `ref` parameter points at this
    resource matches `inner`."""

    res_type: str
    ref: Param  # a reference parameter of the source type
    inner: Node


@dataclass(frozen=True, slots=True)
class InList:
    """`_list=id`: the resource is an item of List/id."""

    res_type: str
    list_id: str


Leaf = (
    TokenLeaf
    | TokenTextLeaf
    | StringLeaf
    | DateLeaf
    | NumberLeaf
    | ReferenceLeaf
    | UriLeaf
    | Missing
    | CompositeLeaf
    | InValueSet
    | Subsumed
)
Node = (
    Leaf
    | IdLeaf
    | LastUpdatedLeaf
    | TypeLeaf
    | Nothing
    | Access
    | And
    | Or
    | Not
    | Chain
    | Has
    | InList
)
ROW_LEAVES = (
    TokenLeaf,
    TokenTextLeaf,
    StringLeaf,
    DateLeaf,
    NumberLeaf,
    ReferenceLeaf,
    UriLeaf,
)


@dataclass(frozen=True, slots=True)
class SortKey:
    param: Param | None  # None: _lastUpdated / _id columns named by `column`
    descending: bool
    column: str = ""  # "last_updated" or "res_id" for the column parameters


@dataclass(frozen=True, slots=True)
class Include:
    """`_include=Source:param[:Target]` or `_revinclude=...`; `param` None is `*`."""

    source_type: str
    param: str | None
    target_type: str | None
    iterate: bool
    reverse: bool


@dataclass(frozen=True, slots=True)
class Query:
    """What to find: resources of `res_types` (every type when empty) matching `where`."""

    res_types: tuple[str, ...]
    where: Node | None
    sort: tuple[SortKey, ...] = ()
