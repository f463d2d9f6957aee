"""Identifier and code system URIs used by the demo population, in one place."""

from __future__ import annotations

# Identifier systems of the MoH VN Core draft IG (NamingSystem.* and the slices of the
# VN Core Patient, Provider, Practitioner and Encounter profiles).
# CCCD is the `TheCCCD` slice (national_id); `citizen_id` is the `SoCMT` slice, the old
# 9/12-digit CMND, which the IG keeps separate.
CCCD = "http://fhir.ehealth.gov.vn/core/sid/national_id"
BHYT = "http://fhir.ehealth.gov.vn/core/sid/insurance_number"
PATIENT_INTERNAL_ID = "http://fhir.ehealth.gov.vn/core/sid/patient-internal-id"
# The Provider profile's `MaCSKCB` slice fixes `provider-code`; the NamingSystem file of the
# same id repeats the medical-licence URI by mistake, so the profile wins.
PROVIDER_CODE = "http://fhir.ehealth.gov.vn/core/sid/provider-code"
EMPLOYEE_NUMBER = "http://fhir.ehealth.gov.vn/core/sid/healthworker-employee-number"
VISIT_NUMBER = "http://fhir.ehealth.gov.vn/core/sid/VisitNumber"
MEDICAL_RECORD_NUMBER = "http://fhir.ehealth.gov.vn/core/sid/MRN"

# VN Core extensions and code systems.
ADMINISTRATIVE_ADDRESS = (
    "http://fhir.ehealth.gov.vn/core/StructureDefinition/extension-administrative-address"
)
ADMINISTRATIVE_UNITS = "http://fhir.ehealth.gov.vn/core/CodeSystem/vn-core-administrative-address"
ETHNICITY_EXTENSION = "http://fhir.ehealth.gov.vn/core/StructureDefinition/extension-race"
ETHNICITY = "http://fhir.ehealth.gov.vn/core/CodeSystem/vn-core-race"

# vnehr's own definitions: the facility level (tuyến) and ownership have no element in the
# VN Core Provider profile, whose Organization.type is fixed to `prov`.
VNEHR = "https://vnehr.org/fhir"
FACILITY_LEVEL_EXTENSION = f"{VNEHR}/StructureDefinition/facility-level"
FACILITY_LEVEL = f"{VNEHR}/CodeSystem/facility-level"
FACILITY_OWNERSHIP_EXTENSION = f"{VNEHR}/StructureDefinition/facility-ownership"
FACILITY_OWNERSHIP = f"{VNEHR}/CodeSystem/facility-ownership"

# International terminologies.
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
CVX = "http://hl7.org/fhir/sid/cvx"
ATC = "http://www.whocc.no/atc"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"

# HL7 terminology.
THO = "http://terminology.hl7.org/CodeSystem"
V2_IDENTIFIER_TYPE = f"{THO}/v2-0203"
V2_CONTACT_ROLE = f"{THO}/v2-0131"
V2_DIAGNOSTIC_SERVICE = f"{THO}/v2-0074"
V2_PERFORMER_FUNCTION = f"{THO}/v2-0443"
V3_ACT_CODE = f"{THO}/v3-ActCode"
V3_ROLE_CODE = f"{THO}/v3-RoleCode"
V3_MARITAL_STATUS = f"{THO}/v3-MaritalStatus"
V3_INTERPRETATION = f"{THO}/v3-ObservationInterpretation"
V3_PARTICIPATION = f"{THO}/v3-ParticipationType"
V3_ACT_SITE = f"{THO}/v3-ActSite"
V3_ROUTE = f"{THO}/v3-RouteOfAdministration"
ORGANIZATION_TYPE = f"{THO}/organization-type"
PRACTITIONER_ROLE = f"{THO}/practitioner-role"
OBSERVATION_CATEGORY = f"{THO}/observation-category"
CONDITION_CLINICAL = f"{THO}/condition-clinical"
CONDITION_VERIFICATION = f"{THO}/condition-ver-status"
CONDITION_CATEGORY = f"{THO}/condition-category"
DIAGNOSIS_ROLE = f"{THO}/diagnosis-role"
DISCHARGE_DISPOSITION = f"{THO}/discharge-disposition"
MEDICATION_REQUEST_CATEGORY = f"{THO}/medicationrequest-category"
LANGUAGE = "urn:ietf:bcp:47"
