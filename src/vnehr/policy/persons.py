"""A patient's person: every Patient the master patient index links to the same Person
(mpi_records, vnehr.identity), so that a record shared with a facility, a citizen or a
guardian is the person's lifetime record, not one hospital's part of it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol


class Rows(Protocol):
    def rows(self, statement: str, args: Sequence[Any] = ()) -> list[Any]: ...


def person_patients(source: Rows, patient_ids: Iterable[str]) -> set[str]:
    """`patient_ids` and every Patient linked to the same person as one of them."""
    ids = sorted(set(patient_ids))
    if not ids:
        return set()
    marks = ", ".join("?" for _ in ids)
    found = source.rows(
        "SELECT m2.patient_id FROM mpi_records m1 JOIN mpi_records m2 "
        f"ON m2.person_id = m1.person_id WHERE m1.patient_id IN ({marks})",
        ids,
    )
    return set(ids) | {str(row[0]) for row in found}
