"""FHIR RESTful interactions, one module each (https://hl7.org/fhir/R4/http.html)."""
