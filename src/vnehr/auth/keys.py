"""The server's signing keys: a JWK Set file, the newest key signs, older ones still verify.

The file (VNEHR_AUTH_KEYS) holds private RSA keys as a JWK Set, newest first; each key has a
`kid` and a `created` time (seconds). `vnehr auth keys rotate` puts a new key in front and
drops the keys retired for longer than any token they signed can live, so that a rotation
never invalidates a token in flight. The public halves are served at the JWKS endpoint.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc import jwk

ALGORITHM = "RS256"  # what OpenID Connect and SMART require every client to verify


class KeyFileError(ValueError):
    """The key file is missing, unreadable or not a set of private RSA keys."""


@dataclass(frozen=True, slots=True)
class SigningKeys:
    keys: tuple[jwk.RSAKey, ...]  # newest first
    created: tuple[int, ...]

    @property
    def current(self) -> jwk.RSAKey:
        return self.keys[0]

    @property
    def kid(self) -> str:
        return str(self.current.kid)

    def key_set(self) -> jwk.KeySet:
        return jwk.KeySet(list(self.keys))

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [k.as_dict(private=False, use="sig", alg=ALGORITHM) for k in self.keys]}

    def private_jwks(self) -> dict[str, Any]:
        return {
            "keys": [
                {**k.as_dict(private=True, use="sig", alg=ALGORITHM), "created": created}
                for k, created in zip(self.keys, self.created, strict=True)
            ]
        }

    @classmethod
    def generate(cls, now: float | None = None) -> SigningKeys:
        return cls((new_key(),), (int(time.time() if now is None else now),))

    @classmethod
    def load(cls, path: str | Path) -> SigningKeys:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise KeyFileError(f"Cannot read the signing keys in {path}: {exc}") from None
        raw = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(raw, list) or not raw:
            raise KeyFileError(f"{path} is not a JWK Set with at least one key")
        keys: list[jwk.RSAKey] = []
        created: list[int] = []
        for item in raw:
            try:
                key = jwk.RSAKey.import_key(item)
            except Exception as exc:  # joserfc raises several kinds for a bad key
                raise KeyFileError(f"{path}: a key is not an RSA JWK ({exc})") from None
            if not key.is_private or not key.kid:
                raise KeyFileError(f"{path}: every key must be private and have a kid")
            keys.append(key)
            created.append(int(item.get("created", 0)))
        return cls(tuple(keys), tuple(created))

    def rotated(self, retain_seconds: int, now: float | None = None) -> SigningKeys:
        """A new current key; keys retired more than `retain_seconds` ago are dropped (a
        key is retired when the key after it is created)."""
        at = int(time.time() if now is None else now)
        keys = [new_key()]
        created = [at]
        retired_at = at
        for key, made in zip(self.keys, self.created, strict=True):
            if at - retired_at > retain_seconds:
                break
            keys.append(key)
            created.append(made)
            retired_at = made
        return SigningKeys(tuple(keys), tuple(created))

    def save(self, path: str | Path) -> None:
        """Write the private key set readable by its owner only."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(target.suffix + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(self.private_jwks(), out, indent=1)
        os.replace(temporary, target)


def new_key() -> jwk.RSAKey:
    return jwk.RSAKey.generate_key(
        2048, parameters={"kid": secrets.token_urlsafe(12), "alg": ALGORITHM}, private=True
    )
