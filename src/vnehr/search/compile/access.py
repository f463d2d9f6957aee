"""The access policy node (ir.Access) -> a condition on resources `r` (docs/access.md).

A resource is open to the caller when it is the caller's facility's own (its owner tag),
or when one of its Patients (the references of its Patient-compartment parameters; a
Patient itself) is open: listed outright (a citizen's own person, their wards), or with a
rule in `access_rules` for one of the caller's parties on that patient or on another
Patient of the same person (mpi_records). Rules: break-the-glass opens everything;
otherwise an opening rule (care, referral, permit) counts unless a deny rule of the caller
or of everyone (`*`) closes the record, and a resource carrying a sensitive label needs a
permit for that label, and one carrying a label denied to the caller stays closed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from vnehr.search import ir

SpId = Callable[[str, str], "int | None"]
BREAK_GLASS = "break-glass"
DENY = "deny"
PERMIT = "permit"


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


class AccessCompiler:
    def __init__(
        self,
        node: ir.Access,
        sp_id: SpId,
        alias: Callable[[str], str],
        compartments: dict[str, list[str]],
    ) -> None:
        self.node = node
        self.sp_id = sp_id
        self.alias = alias
        self.compartments = compartments

    def _sps(self, codes: Callable[[str], Sequence[str]]) -> list[int]:
        found = {self.sp_id(t, c) for t in self.node.res_types for c in codes(t)}
        return sorted(sp for sp in found if sp is not None)

    def condition(self, r: str) -> tuple[str, list[Any]]:
        node = self.node
        parts: list[str] = []
        args: list[Any] = []
        if node.owner is not None:
            tag_sps = self._sps(lambda t: ("_tag",))
            if tag_sps:
                o = self.alias("o")
                parts.append(
                    f"EXISTS (SELECT 1 FROM idx_token {o} WHERE {o}.rkey = {r}.rkey "
                    f"AND {o}.sp IN ({_marks(tag_sps)}) AND {o}.system = ? AND {o}.code = ?)"
                )
                args += [*tag_sps, *node.owner]
        if node.patients or node.parties:
            if "Patient" in node.res_types:
                ok, a = self._open(f"{r}.res_id", r)
                only = f"{r}.res_type = ? AND " if len(node.res_types) > 1 else ""
                parts.append(f"({only}{ok})")
                args += (["Patient"] if only else []) + a
            ref_sps = self._sps(lambda t: self.compartments.get(t, []))
            if ref_sps:
                p = self.alias("p")
                ok, a = self._open(f"{p}.target_id", r)
                parts.append(
                    f"EXISTS (SELECT 1 FROM idx_reference {p} WHERE {p}.rkey = {r}.rkey "
                    f"AND {p}.sp IN ({_marks(ref_sps)}) AND {p}.target_type = ? AND {ok})"
                )
                args += [*ref_sps, "Patient", *a]
        if not parts:
            return "1 = 0", []
        return "(" + " OR ".join(parts) + ")", args

    def _open(self, patient: str, r: str) -> tuple[str, list[Any]]:
        """Whether the Patient `patient` (an SQL expression) is open to the caller, for the
        resource `r`."""
        node = self.node
        parts: list[str] = []
        args: list[Any] = []
        if node.patients:
            parts.append(f"{patient} IN ({_marks(node.patients)})")
            args += list(node.patients)
        if node.parties:
            if BREAK_GLASS in node.effects:
                sql, a = self._rule(patient, (BREAK_GLASS,), node.parties, None)
                parts.append(sql)
                args += a
            opening = tuple(e for e in node.effects if e != BREAK_GLASS)
            if opening:
                open_sql, open_args = self._rule(patient, opening, node.parties, None)
                deny_sql, deny_args = self._rule(patient, (DENY,), (*node.parties, "*"), None)
                labels_sql, labels_args = self._labels(patient, r)
                parts.append(f"({open_sql} AND NOT {deny_sql}{labels_sql})")
                args += [*open_args, *deny_args, *labels_args]
        if not parts:
            return "1 = 0", []
        return "(" + " OR ".join(parts) + ")", args

    def _labels(self, patient: str, r: str) -> tuple[str, list[Any]]:
        """` AND` no label on `r` that keeps it closed, or nothing when labels cannot."""
        node = self.node
        sec_sps = self._sps(lambda t: ("_security",))
        if not sec_sps:
            return "", []
        x = self.alias("l")
        permit_sql, permit_args = self._rule(patient, (PERMIT,), node.parties, f"{x}.code")
        deny_sql, deny_args = self._rule(patient, (DENY,), (*node.parties, "*"), f"{x}.code")
        closed = deny_sql
        args: list[Any] = []
        if node.sensitive:
            closed = f"({x}.code IN ({_marks(node.sensitive)}) AND NOT {permit_sql}) OR {deny_sql}"
            args = [*node.sensitive, *permit_args, *deny_args]
        else:
            args = list(deny_args)
        return (
            f" AND NOT EXISTS (SELECT 1 FROM idx_token {x} WHERE {x}.rkey = {r}.rkey "
            f"AND {x}.sp IN ({_marks(sec_sps)}) AND ({closed}))",
            [*sec_sps, *args],
        )

    def _rule(
        self,
        patient: str,
        effects: Sequence[str],
        parties: Sequence[str],
        label: str | None,
    ) -> tuple[str, list[Any]]:
        """A rule in force of one of `effects` for one of `parties` on the patient or on
        another Patient of the same person; about `label` (an SQL expression) or, None,
        about the whole record."""
        now = self.node.now
        a, m1, m2, b = self.alias("a"), self.alias("m"), self.alias("m"), self.alias("a")

        def cond(x: str) -> tuple[str, list[Any]]:
            label_sql = f"{x}.label = {label}" if label is not None else f"{x}.label = ''"
            return (
                f"{x}.party IN ({_marks(parties)}) AND {x}.effect IN ({_marks(effects)}) "
                f"AND {label_sql} AND {x}.start <= ? AND {x}.until > ?",
                [*parties, *effects, now, now],
            )

        direct, direct_args = cond(a)
        linked, linked_args = cond(b)
        return (
            f"(EXISTS (SELECT 1 FROM access_rules {a} WHERE {a}.patient_id = {patient} "
            f"AND {direct}) OR EXISTS (SELECT 1 FROM mpi_records {m1} JOIN mpi_records {m2} "
            f"ON {m2}.person_id = {m1}.person_id JOIN access_rules {b} "
            f"ON {b}.patient_id = {m2}.patient_id WHERE {m1}.patient_id = {patient} "
            f"AND {m2}.patient_id <> {m1}.patient_id AND {linked}))",
            [*direct_args, *linked_args],
        )
