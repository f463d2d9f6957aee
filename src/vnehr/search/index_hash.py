"""Stable 64-bit hashes of (search parameter, value), the lookup keys of exact-match indexes.

An integer key makes index entries several times smaller than (sp, system, code) text keys,
so a write dirties fewer pages (HAPI FHIR's hash columns, for the same reason). Queries
compare the real columns as well, so a collision can never return a wrong row.
"""

from __future__ import annotations

from hashlib import blake2b


def value_hash(param: str, value: str) -> int:
    """Hash of `value` under `param`, the parameter's "ResourceType.code" (no database id, so
    worker processes can compute it)."""
    digest = blake2b(f"{param}|{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)
