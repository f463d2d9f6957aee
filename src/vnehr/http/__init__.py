"""The HTTP adapter: FHIR REST over FastAPI/Starlette; all FHIR logic is in the router."""
