"""The audit trail (docs/audit.md): an AuditEvent following IHE Basic Audit Log Patterns for
every FHIR interaction and security event, append-only and hash-chained, read through a
read-only, access-controlled AuditEvent endpoint.

- `trail.py`: `AuditTrail`, what the router and the security events call; the commit hook
  that records writes; the queue of the other records and the thread that writes them
- `interaction.py`: which REST interaction a request is
- `patients.py`: the patients a resource belongs to (the Patient compartment)
- `record.py`, `codes.py`: the AuditEvents (BALP) and the columns they are searched by
- `chain.py`: sealing records into the hash chain; verifying it
- `endpoint.py`, `visibility.py`: `GET AuditEvent`, and who may read which records
- `commands.py`: `vnehr audit verify`, `vnehr audit list`
"""
