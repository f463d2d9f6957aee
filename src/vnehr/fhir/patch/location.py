"""Where one element sits in a resource's JSON, and how to change it there.

A primitive's id and extensions live in a `_name` sibling, index-aligned with the values when
the element repeats (https://hl7.org/fhir/R4/json.html#primitive); every change here keeps the
two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(eq=False, slots=True)
class Location:
    """One element: `holder[key]`, or `holder[key][index]` when the element repeats."""

    holder: dict[str, Any]
    key: str  # the JSON property: `deceasedBoolean`, `given`
    index: int | None
    type_name: str  # `HumanName`, `date`, `Patient.contact`, or a resource type
    up: Location | None  # the element holding this one; None for the resource itself

    @classmethod
    def resource(cls, resource: dict[str, Any]) -> Location:
        # The resource is boxed so that it, too, is `holder[key]`.
        return cls({"": resource}, "", None, str(resource.get("resourceType", "")), None)

    @property
    def value(self) -> Any:
        """The JSON value; None for a primitive that has only an id or extensions."""
        return _item(self.holder.get(self.key), self.index)

    @property
    def extras(self) -> Any:
        """The `_key` sibling of a primitive: its id and extensions, or None."""
        return _item(self.holder.get("_" + self.key), self.index)

    @property
    def is_resource(self) -> bool:
        return self.up is None

    @property
    def is_primitive(self) -> bool:
        return not isinstance(self.value, dict)

    def children(self, create: bool = False) -> dict[str, Any] | None:
        """The JSON object holding this element's children: the value of a complex element,
        the `_key` object of a primitive (made when `create` and missing)."""
        if not self.is_primitive:
            return self.value
        extras = self.extras
        if extras is None and create:
            extras = {}
            self.set(self.value, extras)
        return extras if isinstance(extras, dict) else None

    def set(self, value: Any, extras: Any) -> None:
        """Replace this element's value and its `_key` sibling (None removes it)."""
        if self.index is None:
            _put(self.holder, self.key, value)
            _put(self.holder, "_" + self.key, extras)
            return
        values, siblings = aligned(self.holder, self.key)
        values[self.index] = value
        siblings[self.index] = extras
        store_aligned(self.holder, self.key, values, siblings)

    def rename(self, key: str) -> None:
        """Move a single element to another JSON property (a choice changing type)."""
        value, extras = self.value, self.extras
        self.set(None, None)
        self.key = key
        self.set(value, extras)

    def remove(self) -> None:
        """Remove this element, then every element that this leaves empty."""
        if self.index is None:
            self.set(None, None)
        else:
            values, siblings = aligned(self.holder, self.key)
            del values[self.index], siblings[self.index]
            store_aligned(self.holder, self.key, values, siblings)
        up = self.up
        if up is None or up.is_resource or self.holder:
            return
        if up.is_primitive and up.value is not None:  # the holder was its `_key` object
            up.set(up.value, None)
        else:
            up.remove()


def aligned(holder: dict[str, Any], key: str) -> tuple[list[Any], list[Any]]:
    """Copies of the `key` and `_key` lists of a repeating element, padded to one length."""
    values = _as_list(holder.get(key))
    siblings = _as_list(holder.get("_" + key))
    size = max(len(values), len(siblings))
    return values + [None] * (size - len(values)), siblings + [None] * (size - len(siblings))


def store_aligned(holder: dict[str, Any], key: str, values: list[Any], siblings: list[Any]) -> None:
    """Write back the lists of a repeating element, leaving out whatever is empty."""
    has_siblings = any(s is not None for s in siblings)
    has_values = has_siblings or any(v is not None for v in values)
    _put(holder, key, values if has_values else None)
    _put(holder, "_" + key, siblings if has_siblings else None)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _item(value: Any, index: int | None) -> Any:
    if index is None:
        return value
    if isinstance(value, list) and index < len(value):
        return value[index]
    return None


def _put(holder: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        holder.pop(key, None)
    else:
        holder[key] = value


def insert(holder: dict[str, Any], key: str, index: int, value: Any, extras: Any) -> None:
    """Insert an element (and its `_key` sibling) into the list `holder[key]` at `index`."""
    values, siblings = aligned(holder, key)
    values.insert(index, value)
    siblings.insert(index, extras)
    store_aligned(holder, key, values, siblings)
