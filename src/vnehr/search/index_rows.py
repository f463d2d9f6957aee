"""The rows a resource contributes to the search index tables, one list per parameter type.

Extracted at write time (vnehr.search.extract) and written by the store in the same
transaction as the resource version. Only the current version of a resource is indexed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# (param code, system or None, code/value or None, folded display/text or None)
TokenRow = tuple[str, str | None, str | None, str | None]
# (param code, folded value, exact value as written, NFC)
StringRow = tuple[str, str, str]
# (param code, low, high): inclusive bounds in epoch microseconds, UTC
DateRow = tuple[str, int, int]
# (param code, value, low, high): low/high from the value's precision
NumberRow = tuple[str, float, float, float]
# (param code, value, low, high, system, code, unit)
QuantityRow = tuple[str, float, float, float, str | None, str | None, str | None]
# (param code, target type, target id, url): local refs fill type+id; absolute/canonical fill url
ReferenceRow = tuple[str, str | None, str | None, str | None]
# (param code, uri)
UriRow = tuple[str, str]
# (param code, first component's code or target id, *storage.schema.COMPOSITE_COLUMNS[1:]):
# the writer turns the first value into the hash `hv`.
CompositeRow = tuple[Any, ...]


@dataclass(slots=True)
class IndexRows:
    tokens: list[TokenRow] = field(default_factory=list)
    strings: list[StringRow] = field(default_factory=list)
    dates: list[DateRow] = field(default_factory=list)
    numbers: list[NumberRow] = field(default_factory=list)
    quantities: list[QuantityRow] = field(default_factory=list)
    references: list[ReferenceRow] = field(default_factory=list)
    uris: list[UriRow] = field(default_factory=list)
    composites: list[CompositeRow] = field(default_factory=list)

    def count(self) -> int:
        return (
            len(self.tokens)
            + len(self.strings)
            + len(self.dates)
            + len(self.numbers)
            + len(self.quantities)
            + len(self.references)
            + len(self.uris)
            + len(self.composites)
        )
