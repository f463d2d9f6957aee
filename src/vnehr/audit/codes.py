"""The codes of IHE Basic Audit Log Patterns (https://profiles.ihe.net/ITI/BALP/) and FHIR R4
AuditEvent (https://hl7.org/fhir/R4/auditevent.html) that vnehr's audit records use."""

from __future__ import annotations

from typing import Any

AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
IHE_EVENT_TYPE = "urn:ihe:event-type-code"
OUTCOME = "http://terminology.hl7.org/CodeSystem/audit-event-outcome"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ROLE_CLASS = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
NETWORK_TYPE = "http://hl7.org/fhir/network-type"
BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."

# vnehr's own: the role a caller acts in (vnehr.policy.roles), the security events' kinds
# (vnehr.auth.events), the flag on break-the-glass accesses, account and client ids.
ROLE = "https://vnehr.org/fhir/CodeSystem/role"
SECURITY_EVENT = "https://vnehr.org/fhir/CodeSystem/security-event"
AUDIT_FLAG = "https://vnehr.org/fhir/CodeSystem/audit-flag"
OPERATION = "https://vnehr.org/fhir/CodeSystem/operation"
ACCOUNT = "https://vnehr.org/fhir/sid/account"
CLIENT = "https://vnehr.org/fhir/sid/client"
AUTH_EVENT = "https://vnehr.org/fhir/sid/auth-event"

BREAK_GLASS = "break-the-glass"
EMERGENCY = "ETREAT"  # emergency treatment: break-the-glass

# The purpose of use a role stands for when its token names none (v3-ActReason).
PURPOSE_OF_ROLE = {
    "clinical": "TREAT",  # treatment
    "citizen": "PATRQT",  # patient requested
    "national": "HOPERAT",  # healthcare operations
    "registry": "HOPERAT",
    "public-health": "PUBHLTH",  # public health
}
PURPOSES = {
    "TREAT": "treatment",
    "ETREAT": "emergency treatment",
    "PATRQT": "patient requested",
    "HOPERAT": "healthcare operations",
    "PUBHLTH": "public health",
}

# restful-interaction code -> the AuditEvent action (C create, R read, U update, D delete,
# E execute) BALP gives it.
ACTIONS = {
    "read": "R",
    "vread": "R",
    "history-instance": "R",
    "history-type": "R",
    "history-system": "R",
    "search-type": "E",
    "search-system": "E",
    "create": "C",
    "update": "U",
    "patch": "U",
    "delete": "D",
    "operation": "E",
    "batch": "E",
    "transaction": "E",
    "capabilities": "R",
}
# The BALP profile of a successful interaction: (without a patient, with one).
PROFILES = {
    "read": ("Read", "PatientRead"),
    "vread": ("Read", "PatientRead"),
    "search-type": ("Query", "PatientQuery"),
    "search-system": ("Query", "PatientQuery"),
    "create": ("Create", "PatientCreate"),
    "update": ("Update", "PatientUpdate"),
    "patch": ("Update", "PatientUpdate"),
    "delete": ("Delete", "PatientDelete"),
}

# Security events (vnehr.auth.events kinds) -> (type, subtype) codings.
USER_AUTHENTICATION = (DICOM, "110114", "User Authentication")
SECURITY_ALERT = (DICOM, "110113", "Security Alert")
USER_SECURITY_CHANGED = (DICOM, "110137", "User Security Attributes Changed")
LOGIN = (DICOM, "110122", "Login")
LOGOUT = (DICOM, "110123", "Logout")
GET_ACCESS_TOKEN = (IHE_EVENT_TYPE, "ITI-71", "Get Access Token")


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [coding(system, code, display)]}


def outcome_of(status: int) -> int:
    """0 success, 4 minor failure (the request was refused: 4xx), 8 serious failure (5xx)."""
    if status < 400:
        return 0
    return 4 if status < 500 else 8
