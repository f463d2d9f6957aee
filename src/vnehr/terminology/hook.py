"""The terminology tables follow CodeSystem and ConceptMap writes, in the writing transaction.

A CodeSystem written with its concepts (content `complete`, `fragment`, `example`,
`supplement`) has them indexed; one written with `content: not-present` keeps the concepts
that `vnehr terminology load` put in the tables for it. A delete removes the rows. A
CodeSystem or ConceptMap that cannot be indexed (a duplicate code, a parent that is not a
code, a cycle, a map element without a target code) fails the write with a 400.
"""

from __future__ import annotations

from vnehr.storage.base import StoredVersion, WriteTransaction
from vnehr.terminology import tables
from vnehr.terminology.model import CodeSystemContent


class TerminologyIndex:
    """A commit hook of the store (search/custom.TrackedStore)."""

    types = frozenset({"CodeSystem", "ConceptMap"})

    def before_commit(self, txn: WriteTransaction, changed: list[StoredVersion]) -> None:
        latest = {(s.res_type, s.res_id): s for s in changed}
        for (res_type, res_id), stored in latest.items():
            if res_type == "CodeSystem":
                self._code_system(txn, res_id, stored)
            else:
                self._concept_map(txn, res_id, stored)

    def _code_system(self, txn: WriteTransaction, res_id: str, stored: StoredVersion) -> None:
        if stored.deleted:
            tables.drop_code_system(txn, res_id)
            return
        resource = stored.resource()
        if resource.get("content") == "not-present":
            if not tables.update_header(txn, res_id, resource):
                tables.drop_code_system(txn, res_id)
            return
        content = CodeSystemContent(tables.header_of(resource), tables.concepts_of(resource))
        tables.write_code_system(txn, res_id, content)

    def _concept_map(self, txn: WriteTransaction, res_id: str, stored: StoredVersion) -> None:
        if stored.deleted:
            tables.drop_concept_map(txn, res_id)
            return
        tables.write_concept_map(txn, res_id, stored.resource())
