"""JSON Patch and FHIRPath Patch for the patch interaction (https://hl7.org/fhir/R4/http.html#patch)."""

from __future__ import annotations

from vnehr.fhir.patch.fhirpath_patch import apply_fhirpath_patch
from vnehr.fhir.patch.json_patch import apply_json_patch

__all__ = ["apply_fhirpath_patch", "apply_json_patch"]
