"""The world of the multi-tenant leak suite (issue 7), built through the public API, and its
ground truth: who owns each resource, whose record it belongs to, which labels it carries.

Two hospitals: org-a (Bệnh viện Bạch Mai, the caller under test) and org-b (Bệnh viện Chợ
Rẫy). People (synthetic, with valid CCCDs):

- Nguyễn Thị Lan: a Patient at org-a (with an org-a Encounter) and one at org-b (an
  Observation there); the master patient index links both to her person.
- Trần Văn Bình: only at org-b; father (PRN) of Trần Gia Huy, a toddler, only at org-b.
- Lê Thị Chi: at org-b, where she refused sharing with org-a (a deny Consent); org-a also
  registered her and has an Encounter (so the refusal is what keeps org-b's data closed).
- Phạm Văn Dũng: at org-b with HIV (ICD-10 B20, labelled HIV by the server) and diabetes,
  an org-b Encounter naming both diagnoses; org-a registered him and has an Encounter.
- Võ Thị Hoa: at org-b only, referred to org-a by an active ServiceRequest.
- Đỗ Thị Giang: at org-b only, with an HIV viral load and a phone: the break-the-glass case.

What org-a may see is computed here from these facts (not with vnehr's code): its own
resources, shared reference data, and the resources of the persons opened to it (care by an
org-a Encounter, with opt-out sharing; a referral; minus a deny Consent), without a
sensitive label unless org-a wrote the resource.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.testclient import TestClient

from tests.people import BHYT, CCCD, LOINC
from tests.smart import backend_token, bearer, national_token, register_backend, server_of

ICD10 = "http://hl7.org/fhir/sid/icd-10"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
OWNER = "https://vnehr.org/fhir/CodeSystem/owner-facility"
LAB_ID = "https://benhvien.vn/fhir/sid/ma-xet-nghiem"  # a hospital's lab accession numbers
SENSITIVE = frozenset({"HIV", "PSY", "ETH", "SDV", "SEX", "STD"})
PASSWORD = "Mật-khẩu-công-dân-2026"
A, B = "org-a", "org-b"


def ago(days: int, hour: int = 8) -> str:
    """A time `days` ago (Vietnam time): the world's dates follow the clock, so that care
    windows and referrals stay in force whenever the suite runs."""
    day = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).date()
    return f"{day.isoformat()}T{hour:02d}:00:00+07:00"


HUY_BORN = ago(450)[:10]  # a toddler: his father's access as a parent lasts
# key: (family, given, gender, birth date, CCCD, city, phone)
PEOPLE: dict[str, tuple[str, list[str], str, str, str, str, str | None]] = {
    "lan": ("Nguyễn", ["Thị", "Lan"], "female", "1985-03-12", "001185012345", "Hà Nội", None),
    "binh": ("Trần", ["Văn", "Bình"], "male", "1990-06-15", "079090001234", "TP Hồ Chí Minh", None),
    "chi": ("Lê", ["Thị", "Chi"], "female", "1978-09-02", "048178004321", "Đà Nẵng", None),
    "dung": ("Phạm", ["Văn", "Dũng"], "male", "1972-01-20", "031072005678", "Hải Phòng", None),
    "hoa": ("Võ", ["Thị", "Hoa"], "female", "1995-11-08", "092195006789", "Cần Thơ", None),
    "huy": (
        "Trần",
        ["Gia", "Huy"],
        "male",
        HUY_BORN,
        f"0792{HUY_BORN[2:4]}001111",
        "TP Hồ Chí Minh",
        None,
    ),
    "giang": (
        "Đỗ",
        ["Thị", "Giang"],
        "female",
        "1980-04-25",
        "037180002468",
        "Ninh Bình",
        "0912 345 678",
    ),
}
CLINICAL = frozenset(
    {
        "Patient",
        "Observation",
        "Condition",
        "Encounter",
        "ServiceRequest",
        "Consent",
        "RelatedPerson",
    }
)


@dataclass(frozen=True)
class Fact:
    """What the suite knows of one resource it wrote."""

    key: str
    res_type: str
    id: str
    owner: str | None  # the facility that wrote it
    persons: tuple[str, ...]  # the people (PEOPLE keys) whose record it belongs to
    labels: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.res_type}/{self.id}"


@dataclass
class World:
    client: TestClient
    org_a: dict[str, str]
    org_b: dict[str, str]
    national: dict[str, str]
    facts: dict[str, Fact] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)  # people org-a broke the glass for

    # -- the ground truth
    def id(self, key: str) -> str:
        return self.facts[key].id

    def ref(self, key: str) -> str:
        return self.facts[key].ref

    def cccd(self, person: str) -> str:
        return f"{CCCD}|{PEOPLE[person][4]}"

    def fact_of(self, ref: str) -> Fact | None:
        for fact in self.facts.values():
            if fact.ref == ref:
                return fact
        return None

    def open_persons(self, facility: str = A, *, opt_in: bool = False) -> set[str]:
        """People whose record is open to `facility`: an Encounter it provides (opt-out
        only), a ServiceRequest naming it as performer; not when the person denied it."""
        opened: set[str] = set()
        for fact in self.facts.values():
            if fact.res_type == "Encounter" and fact.owner == facility and not opt_in:
                opened.update(fact.persons)
            if fact.key.startswith("referral") and fact.persons:
                opened.update(fact.persons)  # every referral of the world names org-a
        denied = {p for f in self.facts.values() if f.key.startswith("deny") for p in f.persons}
        return opened - denied

    def visible(self, fact: Fact, facility: str = A, *, opt_in: bool = False) -> bool:
        """Whether `facility` may see the resource: its own, shared reference data, a
        person it broke the glass for, or a person open to it (and no sensitive label)."""
        if fact.res_type not in CLINICAL or fact.owner == facility:
            return True
        if facility == A and set(fact.persons) & self.broken:
            return True
        if set(fact.labels) & SENSITIVE:
            return False
        return bool(set(fact.persons) & self.open_persons(facility, opt_in=opt_in))

    def visible_refs(self, res_type: str | None = None, **how: Any) -> set[str]:
        return {
            f.ref
            for f in self.facts.values()
            if (res_type is None or f.res_type == res_type) and self.visible(f, **how)
        }

    def hidden_refs(self, res_type: str | None = None, **how: Any) -> set[str]:
        return {
            f.ref
            for f in self.facts.values()
            if (res_type is None or f.res_type == res_type) and not self.visible(f, **how)
        }

    def person_refs(self, persons: Iterable[str], res_type: str | None = None) -> set[str]:
        wanted = set(persons)
        return {
            f.ref
            for f in self.facts.values()
            if set(f.persons) & wanted and (res_type is None or f.res_type == res_type)
        }

    # -- writing it
    def write(
        self,
        key: str,
        headers: dict[str, str],
        resource: dict[str, Any],
        owner: str | None,
        persons: tuple[str, ...],
    ) -> dict[str, Any]:
        res_type = resource["resourceType"]
        if "id" in resource:
            answer = self.client.put(
                f"/fhir/{res_type}/{resource['id']}", json=resource, headers=headers
            )
        else:
            answer = self.client.post(f"/fhir/{res_type}", json=resource, headers=headers)
        assert answer.status_code == 201, (key, answer.text)
        body: dict[str, Any] = answer.json()
        meta = body.get("meta") or {}
        tags = {(t.get("system"), t.get("code")) for t in meta.get("tag") or []}
        if owner is not None:
            assert (OWNER, owner) in tags, (key, meta)
        labels = tuple(
            sorted(s["code"] for s in meta.get("security") or [] if s.get("system") == ACT_CODE)
        )
        self.facts[key] = Fact(key, res_type, body["id"], owner, persons, labels)
        return body


def backend_headers(
    client: TestClient, facility: str | None, scope: str = "system/*.cruds"
) -> dict[str, str]:
    client_id, private = register_backend(client, scope=scope, facility=facility)
    answer = backend_token(client, client_id, private, scope)
    assert answer.status_code == 200, answer.text
    return bearer(answer.json()["access_token"])


def patient(person: str, facility: str, record: str) -> dict[str, Any]:
    family, given, gender, birth, cccd, city, phone = PEOPLE[person]
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [
            {"system": CCCD, "value": cccd},
            {"system": f"https://benhvien.vn/fhir/sid/{facility}/ma-benh-nhan", "value": record},
        ],
        "active": True,
        "name": [{"family": family, "given": given, "text": " ".join([family, *given])}],
        "gender": gender,
        "birthDate": birth,
        "address": [{"city": city, "country": "VN"}],
    }
    if person == "lan":
        body["identifier"].append({"system": BHYT, "value": "DN4010123456789"})
    if phone:
        body["telecom"] = [{"system": "phone", "value": phone, "use": "mobile"}]
    return body


def observation(
    subject: str,
    facility: str,
    accession: str,
    code: tuple[str, str],
    value: float,
    unit: str,
    when: str,
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "identifier": [{"system": LAB_ID, "value": accession}],
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": code[0], "display": code[1]}]},
        "subject": {"reference": subject},
        "performer": [{"reference": f"Organization/{facility}"}],
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit},
    }


HBA1C = ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood")
GLUCOSE = ("2339-0", "Glucose [Mass/volume] in Blood")
WEIGHT = ("29463-7", "Body weight")
HIV_LOAD = ("20447-9", "HIV 1 RNA [#/volume] (viral load) in Serum or Plasma")


def encounter(subject: str, facility: str, start: str, end: str) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "type": [{"text": "Khám ngoại trú"}],
        "subject": {"reference": subject},
        "serviceProvider": {"reference": f"Organization/{facility}"},
        "period": {"start": start, "end": end},
    }


def condition(subject: str, code: str, display: str, onset: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "confirmed",
                }
            ]
        },
        "code": {"coding": [{"system": ICD10, "code": code, "display": display}]},
        "subject": {"reference": subject},
        "onsetDateTime": onset,
    }


def build(client: TestClient) -> World:
    national = bearer(national_token(client))
    for org, name in ((A, "Bệnh viện Bạch Mai"), (B, "Bệnh viện Chợ Rẫy")):
        answer = client.put(
            f"/fhir/Organization/{org}",
            json={"resourceType": "Organization", "id": org, "active": True, "name": name},
            headers=national,
        )
        assert answer.status_code == 201, answer.text
    world = World(client, backend_headers(client, A), backend_headers(client, B), national)
    world.facts["orgA"] = Fact("orgA", "Organization", A, None, ())
    world.facts["orgB"] = Fact("orgB", "Organization", B, None, ())
    a, b, w = world.org_a, world.org_b, world.write

    # org-b's patients
    for person in ("lan", "binh", "chi", "dung", "hoa", "huy", "giang"):
        w(f"{person}B", b, patient(person, B, f"CR-{person.upper()}"), B, (person,))
    # org-a registers the patients it takes into care (the index links them to their person)
    for person in ("lan", "chi", "dung"):
        w(f"{person}A", a, patient(person, A, f"BM-{person.upper()}"), A, (person,))
    ref = world.ref

    # Lan: cared for at org-a; an HbA1c at org-b, a glucose at org-a
    w(
        "encLanA",
        a,
        encounter(ref("lanA"), A, ago(21, 8), ago(21, 11)),
        A,
        ("lan",),
    )
    w(
        "obsLanA",
        a,
        observation(ref("lanA"), A, "BM-XN-0001", GLUCOSE, 7.8, "mmol/L", ago(21, 9)),
        A,
        ("lan",),
    )
    w(
        "obsLanB",
        b,
        observation(ref("lanB"), B, "CR-XN-0001", HBA1C, 7.2, "%", ago(263)),
        B,
        ("lan",),
    )
    # Bình: org-b only; an HbA1c too (same code as Lan's, so code searches hit both)
    w(
        "encBinhB",
        b,
        encounter(ref("binhB"), B, ago(44, 8), ago(44, 10)),
        B,
        ("binh",),
    )
    w(
        "obsBinhB",
        b,
        observation(ref("binhB"), B, "CR-XN-0002", HBA1C, 6.1, "%", ago(44, 9)),
        B,
        ("binh",),
    )
    # Huy, Bình's son (a toddler): his father is his guardian
    w(
        "obsHuyB",
        b,
        observation(ref("huyB"), B, "CR-XN-0003", WEIGHT, 9.4, "kg", ago(83, 10)),
        B,
        ("huy",),
    )
    related = {
        "resourceType": "RelatedPerson",
        "active": True,
        "patient": {"reference": ref("huyB")},
        "identifier": [{"system": CCCD, "value": PEOPLE["binh"][4]}],
        "relationship": [{"coding": [{"system": ROLE_CODE, "code": "PRN", "display": "parent"}]}],
        "name": [{"family": "Trần", "given": ["Văn", "Bình"]}],
        "gender": "male",
    }
    w("guardianHuyB", b, related, B, ("huy",))
    # Chi: org-a cares for her too, but she refused sharing her org-b record with org-a
    w(
        "encChiA",
        a,
        encounter(ref("chiA"), A, ago(18, 8), ago(18, 9)),
        A,
        ("chi",),
    )
    w(
        "obsChiA",
        a,
        observation(ref("chiA"), A, "BM-XN-0002", GLUCOSE, 5.4, "mmol/L", ago(18, 8)),
        A,
        ("chi",),
    )
    w(
        "obsChiB",
        b,
        observation(ref("chiB"), B, "CR-XN-0004", HBA1C, 5.9, "%", ago(175)),
        B,
        ("chi",),
    )
    consent = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [
            {"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}]}
        ],
        "patient": {"reference": ref("chiB")},
        "dateTime": ago(175, 9),
        "policy": [{"uri": "https://vnehr.org/fhir/policy/chia-se-ho-so"}],
        "provision": {
            "type": "deny",
            "actor": [
                {
                    "role": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "IRCP",
                            }
                        ]
                    },
                    "reference": {"reference": "Organization/org-a"},
                }
            ],
        },
    }
    w("denyChiB", b, consent, B, ("chi",))
    # Dũng: HIV and diabetes at org-b (one visit naming both); cared for at org-a since
    hiv = w(
        "hivDungB", b, condition(ref("dungB"), "B20", "Bệnh do HIV", "2019-05-01"), B, ("dung",)
    )
    assert {"system": ACT_CODE, "code": "HIV"} in hiv["meta"]["security"], hiv["meta"]
    w(
        "dmDungB",
        b,
        condition(ref("dungB"), "E11", "Đái tháo đường típ 2", "2020-01-15"),
        B,
        ("dung",),
    )
    visit = encounter(ref("dungB"), B, ago(236, 8), ago(236, 10))
    visit["diagnosis"] = [
        {"condition": {"reference": ref("dmDungB")}, "rank": 1},
        {"condition": {"reference": ref("hivDungB")}, "rank": 2},
    ]
    w("encDungB", b, visit, B, ("dung",))
    w(
        "encDungA",
        a,
        encounter(ref("dungA"), A, ago(13, 8), ago(13, 12)),
        A,
        ("dung",),
    )
    # Hoa: referred from org-b to org-a
    w(
        "obsHoaB",
        b,
        observation(ref("hoaB"), B, "CR-XN-0005", HBA1C, 8.4, "%", ago(5, 8)),
        B,
        ("hoa",),
    )
    referral = {
        "resourceType": "ServiceRequest",
        "identifier": [
            {"system": "https://benhvien.vn/fhir/sid/giay-chuyen-tuyen", "value": "CT-2026-0042"}
        ],
        "status": "active",
        "intent": "order",
        "category": [{"text": "Chuyển tuyến"}],
        "code": {"text": "Khám và điều trị đái tháo đường"},
        "subject": {"reference": ref("hoaB")},
        "requester": {"reference": "Organization/org-b"},
        "performer": [{"reference": "Organization/org-a"}],
        "authoredOn": ago(5, 10),
    }
    w("referralHoaB", b, referral, B, ("hoa",))
    # Giang: org-b only, an HIV viral load (labelled HIV)
    load = w(
        "hivLoadGiangB",
        b,
        observation(ref("giangB"), B, "CR-XN-0006", HIV_LOAD, 40.0, "copies/mL", ago(139)),
        B,
        ("giang",),
    )
    assert {"system": ACT_CODE, "code": "HIV"} in load["meta"]["security"], load["meta"]
    w(
        "obsGiangB",
        b,
        observation(ref("giangB"), B, "CR-XN-0007", GLUCOSE, 6.0, "mmol/L", ago(139)),
        B,
        ("giang",),
    )
    return world


def citizen_account(world: World, person: str, patient_key: str) -> None:
    family, given, *_ = PEOPLE[person]
    server_of(world.client).auth.accounts.create(
        "citizen",
        PEOPLE[person][4],
        password=PASSWORD,
        name=" ".join([family, *given]),
        fhir_user=f"Patient/{world.id(patient_key)}",
    )


def unknown_id() -> str:
    return str(uuid.uuid4())


# -- reading answers
def entries(bundle: dict[str, Any]) -> tuple[list[str], list[str]]:
    """A search Bundle's (matches, includes) as `Type/id`, outcomes left out."""
    matches: list[str] = []
    includes: list[str] = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") or {}
        mode = (entry.get("search") or {}).get("mode")
        if mode == "outcome" or resource.get("resourceType") == "OperationOutcome":
            continue
        ref = f"{resource['resourceType']}/{resource['id']}"
        (includes if mode == "include" else matches).append(ref)
    return matches, includes


def pages(
    client: TestClient, url: str, headers: dict[str, str], limit: int = 60
) -> list[dict[str, Any]]:
    """Every page of a search, following its `next` links."""
    out: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        assert len(out) < limit, f"more than {limit} pages for {url}"
        answer = client.get(next_url, headers=headers)
        assert answer.status_code == 200, (next_url, answer.text)
        bundle = answer.json()
        assert bundle["resourceType"] == "Bundle", bundle
        out.append(bundle)
        next_url = next(
            (x["url"] for x in bundle.get("link") or [] if x["relation"] == "next"), None
        )
    return out


def search(client: TestClient, url: str, headers: dict[str, str]) -> tuple[set[str], set[str]]:
    """All (matches, includes) of a search, every page; a match seen twice fails."""
    matches: list[str] = []
    includes: set[str] = set()
    for bundle in pages(client, url, headers):
        found, extra = entries(bundle)
        matches += found
        includes |= set(extra)
    assert len(matches) == len(set(matches)), f"a match on two pages: {matches}"
    return set(matches), includes


def shape(answer: Any, *ids: str) -> tuple[int, Any]:
    """An answer's status and body with the given ids (and what differs between any two
    answers: Bundle ids, timestamps) blanked, to compare two answers."""
    text = answer.text
    for value in ids:
        text = text.replace(value, "{id}")
    body = json.loads(text) if text else None
    if isinstance(body, dict):
        body.pop("id", None)
        (body.get("meta") or {}).pop("lastUpdated", None)
        for entry in body.get("entry") or []:
            resource = (entry.get("response") or {}).get("outcome") or entry.get("resource") or {}
            resource.pop("id", None)
            (resource.get("meta") or {}).pop("lastUpdated", None)
    return answer.status_code, body
