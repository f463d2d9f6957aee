"""National patient identity: identifiers, matching, the master patient index (docs/identity.md)."""
